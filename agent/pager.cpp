// placeholder
#include "agent/pager.h"
