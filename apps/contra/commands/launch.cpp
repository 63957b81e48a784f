// contra launch: start the local ranks of a distributed run (torchrun's environment, no Python).
#include <memory>

#include "commands/commands.h"
#include "contra/dist/launch.h"

namespace contra::cli {

void register_launch(CLI::App& app) {
  auto o = std::make_shared<dist::LaunchOptions>();
  auto* launch = app.add_subcommand(
      "launch",
      "start N ranks of a distributed run on this machine, e.g. contra launch --nproc 2 -- train "
      "--config configs/simclr_mnist.yaml (the environment torchrun --no_python gives)");
  launch->add_option("--nproc,--nproc-per-node", o->nproc, "ranks on this machine")
      ->capture_default_str();
  launch->add_option("--nnodes", o->nnodes, "machines taking part")->capture_default_str();
  launch->add_option("--node-rank", o->node_rank, "this machine's index in [0, nnodes)")
      ->capture_default_str();
  launch->add_option("--master-addr", o->master_addr, "host of rank 0 (its store)")
      ->capture_default_str();
  launch
      ->add_option("--master-port", o->master_port,
                   "port of rank 0's store (0: a free port; required with several machines)")
      ->capture_default_str();
  launch
      ->add_option("--grace", o->grace_s,
                   "seconds the other ranks get to stop by themselves after one fails")
      ->capture_default_str();
  launch->add_option("command", o->args, "the ranks' contra command, after --")->required();
  launch->callback([o] {
    set_runner([o] {
      dist::LaunchResult r = dist::launch(*o);
      return r.exit_code;
    });
  });
}

}  // namespace contra::cli
