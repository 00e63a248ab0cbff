// Clang's thread-safety attributes under short names. With
// -Wthread-safety the compiler checks that every field marked GUARDED_BY
// is touched only with its mutex held and that every function marked
// REQUIRES is called so; other compilers see nothing.
#pragma once

#if defined(__clang__)
#define CMM_TSA(x) __attribute__((x))
#else
#define CMM_TSA(x)
#endif

#define CAPABILITY(name) CMM_TSA(capability(name))
#define SCOPED_CAPABILITY CMM_TSA(scoped_lockable)
#define GUARDED_BY(mu) CMM_TSA(guarded_by(mu))
#define PT_GUARDED_BY(mu) CMM_TSA(pt_guarded_by(mu))
#define ACQUIRED_BEFORE(...) CMM_TSA(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) CMM_TSA(acquired_after(__VA_ARGS__))
#define REQUIRES(...) CMM_TSA(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) CMM_TSA(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) CMM_TSA(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) CMM_TSA(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) CMM_TSA(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) CMM_TSA(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) CMM_TSA(release_generic_capability(__VA_ARGS__))
#define EXCLUDES(...) CMM_TSA(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) CMM_TSA(assert_capability(x))
#define RETURN_CAPABILITY(x) CMM_TSA(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS CMM_TSA(no_thread_safety_analysis)
