// A Communicator that forwards every call to another: test doubles override just what they watch or break.
#pragma once

#include "dist/communicator.h"

namespace vtb::testing {

class ForwardingCommunicator : public dist::Communicator {
 public:
  explicit ForwardingCommunicator(dist::Communicator& inner) : inner_(inner) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::string backend() const override { return inner_.backend(); }
  c10::Device device() const override { return inner_.device(); }
  std::shared_ptr<dist::Work> allreduce_async(at::Tensor t, dist::ReduceOp op) override {
    return inner_.allreduce_async(t, op);
  }
  void broadcast(at::Tensor& t, int root) override { inner_.broadcast(t, root); }
  at::Tensor allgather(const at::Tensor& t) override { return inner_.allgather(t); }
  std::shared_ptr<dist::Work> reduce_scatter_async(at::Tensor t, at::Tensor out, dist::ReduceOp op) override {
    return inner_.reduce_scatter_async(t, out, op);
  }
  void barrier() override { inner_.barrier(); }

 protected:
  dist::Communicator& inner_;
};

}  // namespace vtb::testing
