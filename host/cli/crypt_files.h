// Where encrypt/decrypt read and write: regular files, block devices, character devices,
// pipes ("-" for stdin/stdout), or one file in place. A regular OUTPUT is written to a
// temporary file next to it and renamed over it only when everything succeeded, so an
// interrupted or failed run never leaves an output that looks complete.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace sectorcrypt::cli {

enum class FileKind { regular, block, character, stream };  // stream: pipe, socket, tty

struct InputFile {
  std::string name;         // for messages ("stdin" for "-")
  int fd = -1;
  bool owned = false;       // close on destruction
  FileKind kind = FileKind::stream;
  std::optional<uint64_t> size;  // bytes, where the kind has one
  bool positional() const { return kind == FileKind::regular || kind == FileKind::block; }
  InputFile() = default;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();
};

struct OutputFile {
  std::string name;
  int fd = -1;
  bool owned = false;
  FileKind kind = FileKind::stream;
  bool in_place = false;    // fd is the input's fd; write back at the input offset
  std::string temp_path;    // regular output: the temporary written until commit()
  std::string final_path;
  bool positional() const { return in_place || kind == FileKind::block; }
  OutputFile() = default;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile();  // removes an uncommitted temporary

  // Flushes and, for a regular output, renames the temporary over the final name.
  void commit();
  // Removes the temporary (if any) now.
  void discard();
};

// True when `input` and `output` name the same file (st_dev and st_ino), i.e. in place.
bool same_file(const std::string& input, const std::string& output);

// Opens INPUT ("-": stdin) read-only, or read-write for in-place use. Throws Error.
void open_input(const std::string& path, bool read_write, InputFile* in);

// Opens OUTPUT ("-": stdout) for `bytes` bytes (when known): refuses read-only files and
// devices and devices too small; a regular file gets a temporary next to it. Throws Error.
void open_output(const std::string& path, std::optional<uint64_t> bytes, OutputFile* out);

// The input's fd shared as the output (in place).
void share_in_place(const InputFile& in, OutputFile* out);

}  // namespace sectorcrypt::cli
