// The subcommands of `cmm`: each registers its flags on the app and
// returns the function that runs it.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace cmm::cli {

using Runner = std::function<int()>;

Runner AddGuest(CLI::App& app);
Runner AddGet(CLI::App& app);
Runner AddSet(CLI::App& app);
Runner AddParam(CLI::App& app);
Runner AddStatus(CLI::App& app);
Runner AddWatch(CLI::App& app);
Runner AddList(CLI::App& app);
Runner AddReboot(CLI::App& app);
Runner AddLparcfg(CLI::App& app);
Runner AddMount(CLI::App& app);
Runner AddMem(CLI::App& app);
Runner AddHv(CLI::App& app);
Runner AddDemo(CLI::App& app);
Runner AddVm(CLI::App& app);
Runner AddSim(CLI::App& app);

}  // namespace cmm::cli
