// Communicator over NCCL for CUDA tensors (compiled only with VTB_WITH_CUDA).
//
// Note [NCCL bootstrap]: 1. rank 0 creates an ncclUniqueId; 2. MPI_Bcast sends its bytes to every rank;
// 3. each rank selects GPU local_rank and calls ncclCommInitRank. Collectives run on one communication
// stream ordered after the caller's current stream by an event, so they overlap later compute; wait()
// orders the caller's stream after the collective. The watchdog polls each collective's end event.
#pragma once

#include <memory>

#include "dist/communicator.h"

namespace vtb::dist {

std::unique_ptr<Communicator> make_nccl_communicator(CommunicatorOptions options);

}  // namespace vtb::dist
