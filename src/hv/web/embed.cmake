# Writes the web page into a C++ source as one raw string, so the binary
# serves it with nothing to install beside it.
# Usage: cmake -DIN=index.html -DOUT=page.cc -P embed.cmake
file(READ "${IN}" page)
string(FIND "${page}" ")CMMPAGE\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )CMMPAGE\"")
endif()
file(WRITE "${OUT}.tmp"
  "// Generated from ${IN} at build time; edit that file.\n"
  "#include \"hv/web/page.h\"\n\n"
  "namespace cmm::hv {\n\n"
  "std::string_view PageHtml() {\n"
  "  static constexpr char kPage[] = R\"CMMPAGE(${page})CMMPAGE\";\n"
  "  return {kPage, sizeof(kPage) - 1};\n"
  "}\n\n"
  "}  // namespace cmm::hv\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
