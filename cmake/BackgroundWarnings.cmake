# background_add_warnings(target): the warnings every target of ours builds clean under; errors
# with BACKGROUND_WERROR (CI and the dev presets).
function(background_add_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
    $<$<BOOL:${BACKGROUND_WERROR}>:-Werror>)
endfunction()
