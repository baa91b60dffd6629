// Job in a build without MPI: every process works alone; one that mpirun started says so and
// refuses to run.
#include <fmt/format.h>

#include "mpi/job.h"

namespace fetafix::mpi {

struct Job::Impl {};

Job::Job(int&, char**&) : impl_(std::make_unique<Impl>()) {
  if (const int ranks = launched_ranks(); ranks > 1)
    error_ = fmt::format("this fetafix was built without MPI (no MPI library at configure time), so each of the {} "
                         "processes mpirun started would run the whole job; install libopenmpi-dev and rebuild "
                         "(docs/scaling.md), or run one process",
                         ranks);
}

Job::~Job() = default;

const Communicator& Job::comm() const { return single_process(); }

}  // namespace fetafix::mpi
