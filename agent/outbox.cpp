// placeholder
#include "agent/outbox.h"
