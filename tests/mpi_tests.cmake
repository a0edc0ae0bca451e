# Data-parallel tests (included from tests/CMakeLists.txt).
#  - test_mpi_unit: one process, always built: the autograd hook that starts gradient
#    all-reduces, the single-process communicator, DataParallel on one rank.
#  - test_mpi_ranks: doctest run as every rank of `mpirun -np 2` (collectives, the
#    equivalence of 2 ranks with one process); its failure cases are run by
#  - test_mpi_launch: a one-process doctest that starts whole mpirun jobs (failing ranks,
#    `mpirun -np 2 loom train`, SIGTERM) as child processes.
# The last two need MPI (LOOM_WITH_MPI) and mpirun.

add_executable(test_mpi_unit mpi/test_leaf_hook.cpp mpi/test_single_process.cpp
               $<TARGET_OBJECTS:loom_test_main>)
target_link_libraries(test_mpi_unit PRIVATE loom_optim doctest::doctest)
target_include_directories(test_mpi_unit PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
doctest_discover_tests(test_mpi_unit TEST_PREFIX "mpi: " PROPERTIES TIMEOUT 60)

if(NOT LOOM_WITH_MPI OR NOT MPIEXEC_EXECUTABLE)
  message(STATUS "loom: multi-process tests skipped (no MPI or no mpiexec)")
  return()
endif()

add_executable(test_mpi_ranks mpi/ranks_main.cpp mpi/test_ranks_collectives.cpp
               mpi/test_ranks_data_parallel.cpp mpi/test_ranks_failures.cpp)
target_link_libraries(test_mpi_ranks PRIVATE loom_nn loom_optim doctest::doctest)
target_include_directories(test_mpi_ranks PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_options(test_mpi_ranks PRIVATE -Wno-missing-field-initializers)

# Open MPI never frees what MPI_Init allocates and unloads its components before
# LeakSanitizer looks, so those leaks cannot be suppressed by name: in sanitizer builds the
# processes that start MPI jobs run without leak checking (ASan's other checks stay on;
# the variable is ignored by other builds).
set(LOOM_MPI_ASAN_OPTIONS ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1)
# Open MPI refuses root without the ALLOW variables (containers); --oversubscribe: 2 ranks
# on any machine; --bind-to none: ranks share the cores with other jobs instead of each
# being pinned to one.
set(LOOM_MPI_TEST_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
    ${LOOM_MPI_ASAN_OPTIONS})
foreach(case "collectives*" "data parallel*")
  string(REPLACE "*" "" name "${case}")
  add_test(NAME "mpi: 2 ranks: ${name}"
    COMMAND ${MPIEXEC_EXECUTABLE} --oversubscribe --bind-to none -np 2
            $<TARGET_FILE:test_mpi_ranks> "--test-case=${case}")
  set_tests_properties("mpi: 2 ranks: ${name}" PROPERTIES TIMEOUT 120
    ENVIRONMENT "${LOOM_MPI_TEST_ENV}")
endforeach()

add_executable(test_mpi_launch mpi/test_launch.cpp $<TARGET_OBJECTS:loom_test_main>)
target_link_libraries(test_mpi_launch PRIVATE loom_recipes loom_test_common doctest::doctest)
target_include_directories(test_mpi_launch PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_options(test_mpi_launch PRIVATE -Wno-missing-field-initializers)
add_dependencies(test_mpi_launch loom test_mpi_ranks)
target_compile_definitions(test_mpi_launch PRIVATE LOOM_BINARY="$<TARGET_FILE:loom>"
  LOOM_RANKS_BINARY="$<TARGET_FILE:test_mpi_ranks>" LOOM_MPIEXEC="${MPIEXEC_EXECUTABLE}")
doctest_discover_tests(test_mpi_launch TEST_PREFIX "mpi: "
  PROPERTIES TIMEOUT 300 ENVIRONMENT "${LOOM_MPI_ASAN_OPTIONS}")
