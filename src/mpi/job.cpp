#include "mpi/job.h"

#include <cstdlib>

#include <fmt/format.h>

namespace fetafix::mpi {

int launched_ranks() {
  // Open MPI's mpirun, then the PMI variables of MPICH's hydra and of Slurm's srun; PMIx
  // launchers name the rank only.
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* v = std::getenv(var); v && std::atoi(v) > 0) return std::atoi(v);
  return std::getenv("PMIX_RANK") ? 1 : 0;
}

std::string Job::describe_communication() const {
  const Communicator& c = comm();
  const CommunicationStats& s = c.stats();
  return fmt::format("{} ranks: {} collectives, {:.2f} MB sent, {:.3f} s transferring, {:.3f} s waiting for "
                     "other ranks (rank {})",
                     c.size(), s.calls, static_cast<double>(s.bytes_sent) / 1e6, s.transfer_seconds,
                     s.wait_seconds, c.rank());
}

}  // namespace fetafix::mpi
