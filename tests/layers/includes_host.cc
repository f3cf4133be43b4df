// Upward: must not build with the engine's or the kernels' include root.
#include "host/peer_ciphers.h"
