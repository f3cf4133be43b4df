// The engine's public header: builds with the engine's include root, not the kernels'.
#include "engine/engine.h"
