# LibTorch for vtb: the PyPI `torch` wheel's (scripts/install-deps.sh), with or without its CUDA half.
#
# Note [Which LibTorch, which CUDA]:
# 1. LibTorch is found through `torch.utils.cmake_prefix_path` of VTB_TORCH_PYTHON (the virtual
#    environment install-deps.sh makes); a CMAKE_PREFIX_PATH that already holds a LibTorch (a zip from
#    pytorch.org, a cluster module) wins.
# 2. A CUDA wheel's CMake files need a CUDA toolkit (nvcc and headers) to configure. VTB_CUDA_ROOT names
#    it (default: $CUDA_HOME, else /usr/local/cuda). Found → the CUDA build: vtb links libtorch_cuda and
#    the NCCL that libtorch_cuda itself loads (the wheel's nvidia-nccl), and VTB_WITH_CUDA is on.
# 3. No toolkit, or -DVTB_WITH_CUDA=OFF → a CPU-only build from the same wheel: torch::cudart is
#    predefined so Caffe2's CUDA probe returns at its include guard, and vtb links libtorch_cpu alone,
#    so the binary runs where the nvidia-* wheels were never installed.
#
# Defines vtb::torch (what every vtb library links), VTB_WITH_CUDA, NCCL_FOUND and vtb::nccl.

set(VTB_TORCH_PYTHON "$ENV{VTB_TORCH_ENV}/bin/python" CACHE FILEPATH
    "python of the virtual environment holding the torch wheel (scripts/install-deps.sh)")
if(VTB_TORCH_PYTHON STREQUAL "/bin/python")
  set(VTB_TORCH_PYTHON /opt/vtb/torch-2.14.1/bin/python CACHE FILEPATH "" FORCE)
endif()

find_path(_vtb_torch_config TorchConfig.cmake PATH_SUFFIXES share/cmake/Torch lib/cmake/Torch cmake/Torch
          NO_CMAKE_SYSTEM_PATH NO_SYSTEM_ENVIRONMENT_PATH)
if(NOT _vtb_torch_config AND EXISTS "${VTB_TORCH_PYTHON}")
  # find_spec does not import torch: the CPU-only environment has no CUDA libraries to import it with.
  execute_process(
    COMMAND "${VTB_TORCH_PYTHON}" -c
            "import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec('torch').origin), 'share', 'cmake'))"
    OUTPUT_VARIABLE _vtb_torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _vtb_rc ERROR_QUIET)
  if(_vtb_rc EQUAL 0 AND EXISTS "${_vtb_torch_prefix}/Torch/TorchConfig.cmake")
    list(APPEND CMAKE_PREFIX_PATH "${_vtb_torch_prefix}")
  endif()
endif()
unset(_vtb_torch_config CACHE)

# ---- CUDA toolkit: present or not ----------------------------------------------------------------------
if(DEFINED ENV{CUDA_HOME})
  set(_vtb_cuda_default "$ENV{CUDA_HOME}")
else()
  set(_vtb_cuda_default /usr/local/cuda)
endif()
set(VTB_CUDA_ROOT "${_vtb_cuda_default}" CACHE PATH "CUDA toolkit used to configure the CUDA build")
set(_vtb_have_toolkit OFF)
if(EXISTS "${VTB_CUDA_ROOT}/bin/nvcc" AND EXISTS "${VTB_CUDA_ROOT}/include/cuda_runtime.h")
  set(_vtb_have_toolkit ON)
endif()
if(DEFINED VTB_WITH_CUDA AND VTB_WITH_CUDA AND NOT _vtb_have_toolkit)
  message(FATAL_ERROR "VTB_WITH_CUDA=ON needs a CUDA toolkit (nvcc and headers), and none is at "
                      "VTB_CUDA_ROOT=${VTB_CUDA_ROOT}. Load one (module load cuda) or pass -DVTB_CUDA_ROOT=DIR.")
endif()
if(_vtb_have_toolkit AND (NOT DEFINED VTB_WITH_CUDA OR VTB_WITH_CUDA))
  set(_vtb_try_cuda ON)
  set(CUDA_TOOLKIT_ROOT_DIR "${VTB_CUDA_ROOT}" CACHE PATH "" FORCE)
  set(CUDAToolkit_ROOT "${VTB_CUDA_ROOT}")
  set(CMAKE_CUDA_COMPILER "${VTB_CUDA_ROOT}/bin/nvcc" CACHE FILEPATH "")
  # vtb compiles no CUDA kernels of its own: a dialect CMake 3.25 knows for nvcc, and fixed target
  # architectures so configuring does not probe for a GPU (A100, H100/H200).
  set(CMAKE_CUDA_STANDARD 17)
  if(NOT DEFINED TORCH_CUDA_ARCH_LIST)
    set(TORCH_CUDA_ARCH_LIST "8.0;9.0")
  endif()
else()
  set(_vtb_try_cuda OFF)
  add_library(torch::cudart INTERFACE IMPORTED)  # Caffe2's cuda.cmake include guard: skip the CUDA probe
endif()

find_package(Torch REQUIRED)
if(Torch_VERSION VERSION_LESS 2.7)
  message(FATAL_ERROR "vtb needs LibTorch >= 2.7 (C++11 ABI, C++20 headers); found ${Torch_VERSION} at "
                      "${TORCH_INSTALL_PREFIX}. Run scripts/install-deps.sh, or point CMAKE_PREFIX_PATH at one.")
endif()

# Note [LibTorch's bundled headers]: the wheel's include folder also carries the third-party headers it
# was built with (fmt 12, protobuf, pybind11, ...). With that folder on the include path, spdlog, which
# Debian builds against its fmt 9, compiles against fmt 12 and fails. vtb sees a view of the folder without
# them; LibTorch's own headers (ATen, c10, torch, caffe2) do not need them.
set(_vtb_torch_view "${CMAKE_BINARY_DIR}/torch-include")
file(REMOVE_RECURSE "${_vtb_torch_view}")
file(MAKE_DIRECTORY "${_vtb_torch_view}")
file(GLOB _vtb_entries RELATIVE "${TORCH_INSTALL_PREFIX}/include" "${TORCH_INSTALL_PREFIX}/include/*")
foreach(_e IN LISTS _vtb_entries)
  if(NOT _e MATCHES "^(fmt|google|pybind11|spdlog)$")
    file(CREATE_LINK "${TORCH_INSTALL_PREFIX}/include/${_e}" "${_vtb_torch_view}/${_e}" SYMBOLIC)
  endif()
endforeach()
foreach(_t torch torch_cpu torch_cuda c10 c10_cuda)
  if(TARGET ${_t})
    set_target_properties(${_t} PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${_vtb_torch_view};${_vtb_torch_view}/torch/csrc/api/include"
      INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "")
  endif()
endforeach()

# ---- NCCL: the one libtorch_cuda loads (the wheel's nvidia-nccl), else the toolkit's ------------------------
set(NCCL_FOUND FALSE)
if(_vtb_try_cuda AND TARGET torch_cuda)
  get_filename_component(_vtb_site "${TORCH_INSTALL_PREFIX}/.." ABSOLUTE)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS $ENV{NCCL_ROOT} ${NCCL_ROOT} "${_vtb_site}/nvidia/nccl" "${VTB_CUDA_ROOT}"
            PATH_SUFFIXES include NO_DEFAULT_PATH)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 NAMES_PER_DIR
               HINTS $ENV{NCCL_ROOT} ${NCCL_ROOT} "${_vtb_site}/nvidia/nccl" "${VTB_CUDA_ROOT}"
               PATH_SUFFIXES lib lib64 NO_DEFAULT_PATH)
  # The CUDA runtime too from the wheel: an executable's run path holding the toolkit's lib folder would
  # load the toolkit's older libnccl.so.2 and cuDNN in place of those libtorch_cuda was built with.
  file(GLOB _vtb_cudart "${_vtb_site}/nvidia/cu*/lib/libcudart.so.*")
  if(_vtb_cudart)
    list(GET _vtb_cudart 0 _vtb_cudart)
    set_property(TARGET torch::cudart PROPERTY INTERFACE_LINK_LIBRARIES "${_vtb_cudart}")
  endif()
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(NCCL_FOUND TRUE)
    add_library(vtb::nccl UNKNOWN IMPORTED)
    set_target_properties(vtb::nccl PROPERTIES IMPORTED_LOCATION "${NCCL_LIBRARY}"
                                               INTERFACE_INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}")
  endif()
endif()

set(_vtb_cuda_found OFF)
if(_vtb_try_cuda AND TARGET torch_cuda AND TARGET c10_cuda AND NCCL_FOUND)
  set(_vtb_cuda_found ON)
endif()
option(VTB_WITH_CUDA "Build the CUDA/NCCL paths (default: on when a CUDA LibTorch, a toolkit and NCCL are found)"
       ${_vtb_cuda_found})
if(VTB_WITH_CUDA AND NOT _vtb_cuda_found)
  message(FATAL_ERROR "VTB_WITH_CUDA=ON needs a CUDA build of LibTorch (targets torch_cuda, c10_cuda) and NCCL "
                      "(NCCL_FOUND=${NCCL_FOUND}); the LibTorch at ${TORCH_INSTALL_PREFIX} and the toolkit at "
                      "${VTB_CUDA_ROOT} do not give both. Install the CUDA torch wheel (scripts/install-deps.sh), "
                      "set NCCL_ROOT, or pass -DVTB_WITH_CUDA=OFF.")
endif()

add_library(vtb_torch INTERFACE)
add_library(vtb::torch ALIAS vtb_torch)
if(VTB_WITH_CUDA)
  # --no-as-needed: vtb may reference no libtorch_cuda symbol directly, and without the library loaded
  # the CUDA backend is never registered (torch::cuda::is_available() would be false on a GPU node).
  # Imported targets, not TORCH_LIBRARIES: TorchConfig finds c10 with find_library, which prefers a
  # system libc10.so (Debian's LibTorch 1.13) over the wheel's.
  target_link_libraries(vtb_torch INTERFACE "-Wl,--no-as-needed" torch c10_cuda c10 "-Wl,--as-needed")
  message(STATUS "vtb: LibTorch ${Torch_VERSION} (${TORCH_INSTALL_PREFIX}), CUDA toolkit ${CUDA_VERSION} at "
                 "${VTB_CUDA_ROOT}, NCCL ${NCCL_LIBRARY}: VTB_WITH_CUDA=ON")
else()
  target_link_libraries(vtb_torch INTERFACE torch_cpu c10)
  if(_vtb_have_toolkit)
    message(STATUS "vtb: LibTorch ${Torch_VERSION}: CPU-only build (VTB_WITH_CUDA=OFF)")
  else()
    message(STATUS "vtb: LibTorch ${Torch_VERSION}: CPU-only build, no CUDA toolkit at ${VTB_CUDA_ROOT} (VTB_WITH_CUDA=OFF)")
  endif()
endif()
