// Downward: builds with the engine's and with the kernels' include roots.
#include "kernels/xts_key.h"
