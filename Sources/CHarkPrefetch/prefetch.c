// hark_prefetch.h is header-only; SwiftPM needs a source file to build the target.
#include "hark_prefetch.h"
