// placeholder
#include "agent/daemon.h"
