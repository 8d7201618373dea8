// placeholder
#include "agent/page.h"
