// libnghttp2 1.52 (Debian libnghttp2-dev), for HarkGRPC's NGHTTP2Session: the only code that
// touches an nghttp2_session.
#ifndef HARK_CNGHTTP2_SHIM_H
#define HARK_CNGHTTP2_SHIM_H

#include <nghttp2/nghttp2.h>

#endif
