// `loom inspect CKPT [--verify]`: what a checkpoint holds (step, config summary,
// parameter count, training state, and a table of every dataset with dtype and shape);
// --verify reads every dataset and checks its crc32.
#pragma once

#include <ostream>
#include <string>

namespace loom::recipes {

// Prints the summary to `out`; returns the process exit status (1 when --verify found
// problems, which are listed).
int inspect_command(const std::string& checkpoint, bool verify, std::ostream& out);

}  // namespace loom::recipes
