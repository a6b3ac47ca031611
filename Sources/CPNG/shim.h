#include <png.h>
// Function-like and composite macros do not import into Swift; re-export them.
static const png_uint_32 unilip_png_format_gray = PNG_FORMAT_GRAY;
static const png_uint_32 unilip_png_format_rgb = PNG_FORMAT_RGB;
static const png_uint_32 unilip_png_format_rgba = PNG_FORMAT_RGBA;
static const png_uint_32 unilip_png_image_version = PNG_IMAGE_VERSION;
