// The MPI job this process is part of (docs/scaling.md). `mpirun -np R fetafix compare ...` starts
// R processes; each makes a Job at start-up, which joins the job (MPI_Init) and leaves it when
// destroyed (MPI_Finalize). A process not started by mpirun (or srun) never touches MPI: it works
// alone, at no cost. Built without MPI (libopenmpi-dev absent at configure time), a process that
// mpirun started refuses to run, rather than have every rank do the whole job and race to write
// the same files.
#pragma once

#include <memory>
#include <string>

#include "common/communicator.h"

namespace fetafix::mpi {

class Job {
 public:
  Job(int& argc, char**& argv);
  ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  // The job's ranks: MPI's world, or single_process().
  const Communicator& comm() const;
  // Why this process cannot run (started by mpirun, but built without MPI); empty when it can.
  const std::string& error() const { return error_; }
  // "2 ranks: 57 collectives, 1.20 MB sent, 0.020 s transferring, 0.310 s waiting for other
  // ranks (rank 0)": this rank's communication, for the log.
  std::string describe_communication() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string error_;
};

// Whether the environment says mpirun, srun or another PMI launcher started this process, and
// how many processes it started (0 when none did).
int launched_ranks();

}  // namespace fetafix::mpi
