/* A stand-in on the include path of hs_core and of every calculation library (hs_pure in
 * common/CMakeLists.txt): a calculation does no I/O, so including an I/O library's header there fails the
 * build, with this reason. */
#error "<csv.h> is an I/O header: hs_core and the calculations link protobuf-c and xxhash only"
