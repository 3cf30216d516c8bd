"""PHP calls that are no JavaScript stack frames.

Error reports carry JavaScript stack traces (`at a.seajs.cb.exec (https://cdn.example/app.js:1:2)`,
`at eval (eval at f (https://...))`): a frame names a function and gives, in parentheses, where it
runs. Read as PHP, `exec (` is a command call. A PHP call's parentheses hold its arguments — strings,
variables, numbers, nested calls —, never a script URL with a line and a column: so a value confirms a
PHP call when at least one call of a dangerous function in it is not such a frame.
"""

from __future__ import annotations

import re
from typing import Final

# The functions of rules 233105 and 233106 (their Hyperscan patterns are the prefilter).
_NAMES: Final = (
    r"eval|assert|system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|create_function|call_user_func(?:_array)?"
    r"|preg_replace|include(?:_once)?|require(?:_once)?|base64_decode|base64_encode|str_rot13|gzinflate|gzuncompress"
    r"|gzdecode|bzdecompress|convert_uudecode|hex2bin|file_get_contents|file_put_contents|fopen|fwrite|fputs|readfile"
    r"|show_source|highlight_file|phpinfo|posix_\w+|proc_\w+|curl_(?:init|exec|setopt)|fsockopen|pfsockopen"
    r"|stream_socket_client|putenv|getenv|ini_set|ini_get|dl|symlink|unlink|move_uploaded_file|unserialize|var_dump"
    r"|print_r|var_export|array_map|array_filter|array_walk|iterator_apply|register_shutdown_function"
    r"|register_tick_function|set_error_handler|set_exception_handler|ob_start|apache_\w+|chr|strrev|rawurldecode"
    r"|htmlspecialchars_decode|get_defined_vars|get_defined_functions|parse_str|func_get_args|scandir|opendir|readdir"
    r"|stream_get_contents|escapeshellarg|escapeshellcmd"
)
_CALL: Final = re.compile(rf"\b(?:{_NAMES})\s*(?:/\*.{{0,40}}?\*/\s*)*\(", re.I | re.S)
# Where a frame's function runs: a script URL with line and column, an eval site, native code.
_FRAME: Final = re.compile(
    r"\s*(?:[a-z][\w+.-]*://[^\s()]*:\d+:\d+\)|<anonymous>(?::\d+:\d+)?\)|native\)|eval at\s|index \d+\))", re.I
)


def is_php_call(value: str) -> bool:
    """Whether `value` calls a dangerous PHP function somewhere other than in a JS stack frame."""
    return any(_FRAME.match(value, m.end()) is None for m in _CALL.finditer(value))
