// Shared by the MPI test programs: the job's communicator, created once in main().
#pragma once

#include "dist/communicator.h"

namespace vtb::testing {

dist::Communicator& comm();

}  // namespace vtb::testing
