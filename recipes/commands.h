// The `loom` subcommands other than train and demo, as functions the CLI (and tests) call.
#pragma once

#include <istream>
#include <ostream>
#include <string>

#include "recipes/decode.h"

namespace loom::recipes {

// `loom translate --checkpoint CKPT`: one source sentence per input line, one translation
// per output line, in order.
void translate_stream(const std::string& checkpoint, const DecodeOptions& decode,
                      std::istream& in, std::ostream& out);

// `loom eval --checkpoint CKPT --split dev|test|SRC,TGT`: a split of the recipe's data (as
// saved in the checkpoint's config) or two files; prints a table, or one JSON object.
void eval_command(const std::string& checkpoint, const std::string& split,
                  const DecodeOptions& decode, bool json, std::ostream& out);

}  // namespace loom::recipes
