// Upward: must not build with the host layer's include root (the C API's): the CLI sits
// above the library.
#include "host/cli/cpu_features.h"
