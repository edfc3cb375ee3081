// BACKGROUND_API marks the compiled core's entry points. The core is built with hidden
// visibility, so a shared build exports exactly these, and every library in the process that
// links the shared core uses its one default pool.
#ifndef BACKGROUND_DETAIL_EXPORT_HPP
#define BACKGROUND_DETAIL_EXPORT_HPP

#define BACKGROUND_API __attribute__((visibility("default")))

#endif  // BACKGROUND_DETAIL_EXPORT_HPP
