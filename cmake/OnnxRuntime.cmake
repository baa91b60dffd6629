# Imported target onnxruntime::onnxruntime from ORT_ROOT (an official release) or from
# third_party/onnxruntime (unpacked by scripts/setup.sh from the npm package).
if(ORT_ROOT)
  set(_ort_root "${ORT_ROOT}")
else()
  set(_ort_root "${PROJECT_SOURCE_DIR}/third_party/onnxruntime")
endif()
find_path(ORT_INCLUDE_DIR onnxruntime_cxx_api.h
  PATHS "${_ort_root}/include" "${_ort_root}/include/onnxruntime" NO_DEFAULT_PATH)
find_library(ORT_LIBRARY onnxruntime PATHS "${_ort_root}/lib" "${_ort_root}/lib64" NO_DEFAULT_PATH)
if(NOT ORT_INCLUDE_DIR OR NOT ORT_LIBRARY)
  message(FATAL_ERROR "ONNX Runtime not found under '${_ort_root}'. Run scripts/setup.sh, or pass -DORT_ROOT=<official release>.")
endif()
add_library(onnxruntime::onnxruntime SHARED IMPORTED)
set_target_properties(onnxruntime::onnxruntime PROPERTIES
  IMPORTED_LOCATION "${ORT_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${ORT_INCLUDE_DIR}")
get_filename_component(ORT_LIBRARY_DIR "${ORT_LIBRARY}" DIRECTORY)
# The npm package ships libonnxruntime.so without the libonnxruntime.so.1 name its SONAME
# makes the loader look for; provide that name inside the build tree (ORT's folder stays untouched).
if(NOT EXISTS "${ORT_LIBRARY_DIR}/libonnxruntime.so.1" AND ORT_LIBRARY MATCHES "\\.so$")
  set(_ort_link_dir "${CMAKE_BINARY_DIR}/onnxruntime-lib")
  file(MAKE_DIRECTORY "${_ort_link_dir}")
  file(CREATE_LINK "${ORT_LIBRARY}" "${_ort_link_dir}/libonnxruntime.so.1" SYMBOLIC)
  set(ORT_LIBRARY_DIR "${_ort_link_dir}")
endif()
# Binaries find libonnxruntime.so through their RUNPATH, wherever the build tree is.
set(CMAKE_BUILD_RPATH "${ORT_LIBRARY_DIR}")
set(CMAKE_INSTALL_RPATH "${ORT_LIBRARY_DIR}")
message(STATUS "ONNX Runtime: ${ORT_LIBRARY}")
