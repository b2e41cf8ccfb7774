// PocketSphinx 0.8+5prealpha and SphinxBase (Debian libpocketsphinx-dev, libsphinxbase-dev), for
// HarkSphinx's SphinxDecoder: the only code that touches a ps_decoder_t.
#ifndef HARK_CPOCKETSPHINX_SHIM_H
#define HARK_CPOCKETSPHINX_SHIM_H

#include <pocketsphinx.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>
#include <sphinxbase/fsg_model.h>
#include <sphinxbase/jsgf.h>

#endif
