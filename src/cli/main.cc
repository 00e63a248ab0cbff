// cmm: one binary, one row per subcommand.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/common.h"

int main(int argc, char** argv) {
  using namespace cmm::cli;
  // Logs go to stderr; stdout carries what a command prints.
  spdlog::set_default_logger(spdlog::stderr_color_mt("cmm"));
  CLI::App app{"cmm: cooperative memory overcommitment (the pseries Collaborative Memory Manager, in user space)"};
  app.require_subcommand(1);
  app.footer("Run `cmm SUBCOMMAND --help` for a subcommand's flags and examples.");

  using Add = Runner (*)(CLI::App&);
  static constexpr Add kSubcommands[] = {AddDemo, AddGuest,   AddGet,   AddSet, AddParam, AddStatus,
                                         AddWatch, AddList, AddReboot, AddLparcfg, AddMount, AddMem, AddHv, AddVm, AddSim};
  std::map<CLI::App*, Runner> runners;
  for (Add add : kSubcommands) {
    const size_t before = app.get_subcommands({}).size();
    Runner r = add(app);
    runners[app.get_subcommands({}).at(before)] = std::move(r);
  }

  // CLI11 would only say a subcommand is required: say which names exist.
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
  if (argc > 1 && argv[1][0] != '-' && std::find(names.begin(), names.end(), argv[1]) == names.end()) {
    std::fprintf(stderr, "cmm: no subcommand named %s; one of: %s (see `cmm --help`)\n", argv[1],
                 fmt::format("{}", fmt::join(names, ", ")).c_str());
    return kExitUsage;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Name the (sub)command that refused the flags, and its own help.
    std::string command = "cmm";
    for (const CLI::App* at = &app; !at->get_subcommands().empty();) {
      at = at->get_subcommands().front();
      command += " " + at->get_name();
    }
    std::fprintf(stderr, "%s: %s; see `%s --help`\n", command.c_str(), e.what(), command.c_str());
    return kExitUsage;
  }

  CLI::App* sub = app.get_subcommands().at(0);
  try {
    return runners.at(sub)();
  } catch (const UserError& e) {
    std::fprintf(stderr, "cmm %s: %s\n", sub->get_name().c_str(), e.what());
    return e.code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cmm %s: unexpected error: %s\n", sub->get_name().c_str(), e.what());
    return kExitError;
  }
}
