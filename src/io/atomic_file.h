#pragma once
// Write a whole file to DIR/.name.tmp, then rename it into place: a reader never sees a
// half-written file, and a crash leaves the previous version intact.
#include <string>
#include <string_view>

namespace attnlab {

void write_file_atomic(const std::string& path, std::string_view content);
std::string read_file(const std::string& path, const std::string& what);  // UserError if missing

}  // namespace attnlab
