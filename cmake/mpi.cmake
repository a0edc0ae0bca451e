# The MPI communicator (kernels/mpi/, CPU data parallel), included from the top-level
# CMakeLists.txt after the libraries exist. LOOM_WITH_MPI says whether MPI::MPI_CXX was
# found; without it kernels/collectives.cpp still gives the single-process communicator
# and refuses a multi-rank launch with a clear error.
if(LOOM_WITH_MPI)
  file(GLOB LOOM_MPI_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/mpi/*.cpp)
  target_sources(loom_kernels PRIVATE ${LOOM_MPI_SOURCES})
  # PRIVATE: only kernels/ includes <mpi.h>; the static library's link line still carries
  # libmpi to everything that links loom_kernels.
  target_link_libraries(loom_kernels PRIVATE MPI::MPI_CXX)
endif()
