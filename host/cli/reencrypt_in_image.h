// `sectorcrypt reencrypt` on a volume whose LUKS2 header is inside the image, laid out and
// converted as cryptsetup 2.6.1 does.
//
// --encrypt --reduce-device-size SIZE without --header puts the header inside the image,
// laid out as cryptsetup 2.6 does: the data segment starts at SIZE/2 (the header, its
// keyslots area filling that room up to 128 MiB), the data moves there while it is
// encrypted (data_shift.h), and the volume's data is the first image size - SIZE/2 bytes
// of the original (of which cryptsetup keeps image size - SIZE: the last SIZE bytes are
// the user's to give up). The header is staged in .IMAGE.sectorcrypt-new-header (next to
// the resume file) and copied over the first SIZE/2 bytes only after the shift is complete
// and durable; then the staged file goes, then the resume file.
//
// A volume whose header is inside the image (what luksFormat and --reduce-device-size
// make), as cryptsetup 2.6.1 treats it: a key change without --header rewrites the data
// area in place (resumable_rewrite.h) and puts a new header (same room, UUID and label, one
// keyslot) over the old one last, staged and copied as above. --decrypt needs --header
// NEWFILE: the header is exported there before the data moves down over it to the start of
// the image while it is decrypted (data_shift.h); once all is moved, the exported header's
// keyslots are removed (cryptsetup's has none either, and a rerun must not decrypt the
// plain data again) and it is renamed from NEWFILE.sectorcrypt-export to NEWFILE.
#pragma once

#include "host/cli/reencrypt_steps.h"

namespace sectorcrypt::cli::reencrypt {

// --encrypt --reduce-device-size without --header: the header goes inside the image.
int run_encrypt_in_image(const ReencryptOptions& o);

// A change of key without --header.
int run_change_key_in_image(const ReencryptOptions& o);

// --decrypt --header NEWFILE moves the data over the header inside the image when a run of
// it is recorded, or when NEWFILE is new and the image starts with a LUKS header.
bool decrypt_moves_data(const ReencryptOptions& o);

// --decrypt --header NEWFILE of a volume whose header is inside the image.
int run_decrypt_from_image(const ReencryptOptions& o);

}  // namespace sectorcrypt::cli::reencrypt
