# Checks that the library's dynamic symbol table holds exactly the functions
# declared in hakuban.h: nothing missing, nothing extra (the Go runtime's
# symbols are hidden by capi/hakuban.map).
# Usage: cmake -DNM=nm -DHEADER=hakuban.h -DLIB=libhakuban.so -P check_symbols.cmake
execute_process(COMMAND ${NM} -D --defined-only ${LIB}
                OUTPUT_VARIABLE nm_out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm failed on ${LIB}")
endif()
string(REGEX MATCHALL "[0-9a-f]+ [A-Za-z] [A-Za-z_0-9.@]+" lines "${nm_out}")
set(exported "")
foreach(line IN LISTS lines)
  string(REGEX REPLACE "^[0-9a-f]+ [A-Za-z] " "" name "${line}")
  list(APPEND exported ${name})
endforeach()

file(READ ${HEADER} header)
string(REGEX MATCHALL "[ *](hakuban_[a-z0-9_]+)\\(" decls "${header}")
set(declared "")
foreach(d IN LISTS decls)
  string(REGEX REPLACE "^[ *](hakuban_[a-z0-9_]+)\\($" "\\1" name "${d}")
  list(APPEND declared ${name})
endforeach()
list(REMOVE_DUPLICATES declared)

set(missing ${declared})
list(REMOVE_ITEM missing ${exported})
set(extra ${exported})
list(REMOVE_ITEM extra ${declared})
list(LENGTH declared n)
if(missing OR extra)
  message(FATAL_ERROR "symbols differ from hakuban.h\n  declared, not exported: ${missing}\n  exported, not declared: ${extra}")
endif()
message(STATUS "libhakuban exports exactly the ${n} functions of hakuban.h")
