# The lock wrappers carry clang's thread-safety annotations: the probe's
# correct uses compile under -Wthread-safety -Werror, each misuse fails
# with the analysis's own message.
set(flags -std=c++20 -fsyntax-only -Wthread-safety -Werror "-I${SRC}")
execute_process(COMMAND ${CLANG} ${flags} -DPROBE=0 ${PROBE} RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the correct uses do not compile:\n${err}")
endif()
foreach(n 1 2 3 4)
  execute_process(COMMAND ${CLANG} ${flags} -DPROBE=${n} ${PROBE} RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(rc EQUAL 0)
    message(FATAL_ERROR "misuse ${n} compiled: the analysis did not see it")
  endif()
  if(NOT err MATCHES "Wthread-safety")
    message(FATAL_ERROR "misuse ${n} failed for another reason:\n${err}")
  endif()
endforeach()
message(STATUS "4 misuses refused, the correct uses accepted")
