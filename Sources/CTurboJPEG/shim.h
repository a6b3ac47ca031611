#include <stdio.h>
#include <turbojpeg.h>
// Enum-valued and composite flags re-exported with plain C types for Swift.
static const int unilip_tj_pf_rgb = TJPF_RGB;
static const int unilip_tj_pf_gray = TJPF_GRAY;
static const int unilip_tj_samp_444 = TJSAMP_444;
static const int unilip_tj_samp_420 = TJSAMP_420;
static const int unilip_tj_samp_gray = TJSAMP_GRAY;
static const int unilip_tj_cs_gray = TJCS_GRAY;
static const int unilip_tj_err_warning = TJERR_WARNING;
static const int unilip_tj_flag_progressive = TJFLAG_PROGRESSIVE;
static const int unilip_tj_flag_accuratedct = TJFLAG_ACCURATEDCT;
static const int unilip_tj_cs_cmyk = TJCS_CMYK;
static const int unilip_tj_cs_ycck = TJCS_YCCK;
