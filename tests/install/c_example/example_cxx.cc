// The C++ engine API from an installed sectorcrypt: the installed headers are complete
// and the library links. Encrypts and decrypts 1 MiB and checks the round trip.
#include <cstdio>
#include <memory>
#include <vector>

#include "engine/engine.h"

int main() {
  using namespace sectorcrypt;
  EngineConfig cfg;
  cfg.backend = BackendKind::cpu;
  std::unique_ptr<Engine> engine;
  if (Status s = Engine::create(cfg, &engine); !s) {
    std::fprintf(stderr, "create: %s\n", s.message());
    return 1;
  }
  std::vector<uint8_t> key(64);
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 7 + 1);
  KeyHandle k;
  if (Status s = engine->add_key(key.data(), key.size(), {}, &k); !s) {
    std::fprintf(stderr, "add_key: %s\n", s.message());
    return 1;
  }
  std::vector<uint8_t> data(1 << 20), enc(data.size()), dec(data.size());
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  SectorFormat fmt;
  fmt.sector_size = 4096;
  if (!engine->crypt_sync(k, Direction::encrypt, fmt, 8, data.data(), enc.data(), data.size()) ||
      !engine->crypt_sync(k, Direction::decrypt, fmt, 8, enc.data(), dec.data(), data.size()) ||
      dec != data || enc == data) {
    std::fprintf(stderr, "round trip failed\n");
    return 1;
  }
  std::printf("ok: C++ engine API, %s\n", engine->backend_detail());
  return 0;
}
