#include <png.h>
// Function-like and composite macros do not import into Swift; re-export them.
static const png_uint_32 unilip_png_format_gray = PNG_FORMAT_GRAY;
static const png_uint_32 unilip_png_format_rgb = PNG_FORMAT_RGB;
static const png_uint_32 unilip_png_format_rgba = PNG_FORMAT_RGBA;
static const png_uint_32 unilip_png_format_linear_y = PNG_FORMAT_LINEAR_Y;
static const png_uint_32 unilip_png_format_linear_rgb = PNG_FORMAT_LINEAR_RGB;
static const png_uint_32 unilip_png_format_linear_rgba = PNG_FORMAT_LINEAR_RGB_ALPHA;
static const png_uint_32 unilip_png_format_flag_alpha = PNG_FORMAT_FLAG_ALPHA;
static const png_uint_32 unilip_png_format_flag_color = PNG_FORMAT_FLAG_COLOR;
static const png_uint_32 unilip_png_format_flag_linear = PNG_FORMAT_FLAG_LINEAR;
static const png_uint_32 unilip_png_format_flag_colormap = PNG_FORMAT_FLAG_COLORMAP;
static const png_uint_32 unilip_png_image_version = PNG_IMAGE_VERSION;
static const png_uint_32 unilip_png_image_flag_fast = PNG_IMAGE_FLAG_FAST;

/// Nonzero when the last simplified-API call on `image` failed (PNG_IMAGE_FAILED).
static inline int unilip_png_image_failed(const png_image *image) {
    return PNG_IMAGE_FAILED(*image);
}
