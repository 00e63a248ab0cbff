// cmm_bench_report LINES.jsonl OUT.json: one table of every benchmark's
// figures (figure, unit, cmm, raw limit, ratio, goal) and the same as JSON.
#include <cstdio>
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: cmm_bench_report FIGURES.jsonl OUT.json\n");
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::fprintf(stderr, "cmm_bench_report: cannot read %s\n", argv[1]);
    return 1;
  }
  nlohmann::json all = nlohmann::json::array();
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) all.push_back(nlohmann::json::parse(line));
  }
  fmt::print("\n{:<10} {:<40} {:>12} {:>12} {:<9} {:>7} {:>10} {}\n", "BENCH", "FIGURE", "CMM", "RAW LIMIT", "UNIT",
             "RATIO", "GOAL", "");
  bool met = true;
  for (const auto& f : all) {
    const bool ok = f["met"];
    met &= ok;
    fmt::print("{:<10} {:<40} {:>12.4g} {:>12.4g} {:<9} {:>7.2f} {:>10} {}\n", f["bench"].get<std::string>(),
               f["figure"].get<std::string>(), f["value"].get<double>(), f["raw"].get<double>(),
               f["unit"].get<std::string>(), f["ratio"].get<double>(), f["goal"].get<std::string>(),
               f["goal"].get<std::string>().empty() ? "" : (ok ? "met" : "NOT met"));
  }
  std::ofstream(argv[2]) << nlohmann::json{{"figures", all}, {"all_goals_met", met}}.dump(2) << "\n";
  fmt::print("{} figures, goals {}; JSON in {}\n", all.size(), met ? "all met" : "NOT all met", argv[2]);
  return 0;
}
