"""A shell-grammar detector for command injection (POSIX sh, cmd.exe, enough of PowerShell).

A regex over command names flags prose ("in nature will be removed.;history;"), lists of tags
("后端;前端;java;"), text tables ("| field | type | null |") and random telemetry blobs. An injection has
a grammar instead: it breaks out of the data the application put it in (a separator at the start of the
value, or right after one data token: `127.0.0.1; cat /etc/passwd`, `x|id`), or opens a substitution
(`$(...)`, backticks, `<(...)`), and then a known command stands in command position, with arguments
shaped like a shell's (flags, system paths, URLs, addresses, redirections, variables). Evasions are
folded first: quotes and `\\` inside words, `^` (cmd.exe), `$IFS`/`${IFS}`, empty expansions (`$@`,
`$1`, `${x}`), brace lists `{cat,/etc/passwd}`, globs in absolute paths (`/bi?/c[a]t`).

Each public function is a confirmer for a rule whose Hyperscan `pattern` prefilters (see DETECTORS in
`_rules.py`): the regex says "maybe", the grammar says yes or no. Written for netguard.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final

from waf._decode import lowercase

# --- vocabulary -----------------------------------------------------------------------------------------

UNIX_COMMANDS: Final = frozenset(
    """cat tac nl head tail more less od xxd hexdump strings base64 base32 basenc id whoami uname hostname
    ifconfig ip netstat ss ps pstree top htop w who last lastlog lastlogin env printenv set export ls dir
    find locate grep egrep fgrep awk gawk sed sort uniq cut wc diff echo printf curl wget fetch lynx nc ncat
    netcat socat telnet ssh scp rsync ftp tftp sftp lftp bash sh zsh ksh csh tcsh dash fish ash busybox
    python python2 python3 perl ruby php node nodejs lua tclsh wish expect java gcc cc c89 c99 make chmod
    chown chgrp rm mv cp dd mkdir rmdir touch ln kill killall pkill nohup crontab at systemctl service
    mount umount useradd usermod su sudo doas sleep ping nslookup dig host traceroute tcpdump
    tshark nmap masscan xterm screen tmux tar bsdtar zip unzip gzip gunzip zcat zstdcat bzip2 bzcat xz
    unxz xzcat openssl gpg column bridge docker kubectl crictl podman eval exec source time timeout
    xargs tee yes rev shuf bc expr seq tr iconv uuencode uudecode file stat readlink realpath getent
    groups lsof mkfifo mknod vi vim nano ed emacs man apt apt-get aptitude yum dnf zypper pacman snap
    dpkg rpm pip npm gem pwd cd history alias unset unalias trap true false jq sqlite3 mysql psql mongo
    redis-cli irb ansible visudo cscli chef fold comm flock cpulimit perf strace ltrace gdb rmt strace
    iptables nft journalctl sysctl modprobe insmod nsenter unshare losetup fdisk mkfs chattr lsattr
    setfacl getfacl capsh getcap setcap pkexec runuser ssh-keygen ssh-agent 7z unrar cpio split paste
    join expand fmt look cmp patch install shred truncate watch script dmesg lsmod lspci lsusb lsblk
    blkid df du free uptime nproc arch locale whois xh http aria2c wget2 chroot nice setsid stdbuf
    unbuffer taskset ionice command builtin""".split()
)
WINDOWS_COMMANDS: Final = frozenset(
    """cmd command powershell pwsh regedit reg certutil mshta wscript cscript rundll32 regsvr32 bitsadmin
    wmic net net1 netsh sc schtasks tasklist taskkill systeminfo whoami ipconfig nslookup ping type dir
    copy xcopy robocopy del erase attrib icacls cacls takeown bcdboot bcdedit diskpart format vssadmin
    wevtutil msiexec installutil msbuild forfiles findstr qwinsta quser query runas shutdown ftp tftp
    expand makecab esentutl mklink set echo start call timeout wsl bash curl wget iex iwr irm""".split()
)
COMMANDS: Final = UNIX_COMMANDS | WINDOWS_COMMANDS
# Commands that are also ordinary words or names (English, products, languages): after prose they
# are read as words, unless their arguments are a shell's.
WORDLIKE: Final = frozenset(
    """cat head tail more less strings set export find locate sort cut diff echo fetch time at make file
    stat man yes true false free watch screen script type dir copy format query start call expand join
    split paste look patch install last who w top host dig kill touch mount service source alias history
    column fold comm arch locale tee rev seq ln cp mv rm dd ed vi nano node java python perl ruby php lua
    go npm pip gem docker mysql psql mongo jq http chef net reg sc cd env id ps ls du df nl od ar pr fmt
    su sg bridge command builtin eval exec test wish expect sleep ping file net1 erase del attrib
    shutdown runas timeout fish ash ip ss bc tr zip tar gzip lynx telnet ssh ftp less nice done install
    perf flock crontab""".split()
)
# Wrappers that run the command after them (`time sh -c ...`, `sudo id`); skipped in command position.
WRAPPERS: Final = frozenset(
    "sudo doas time nohup nice env timeout strace ltrace command builtin exec busybox xargs stdbuf "
    "unbuffer chroot setsid taskset ionice flock cpulimit watch".split()
)
SENSITIVE_NAMES: Final = frozenset(
    "passwd shadow group hosts sudoers master.passwd id_rsa id_dsa id_ecdsa id_ed25519 authorized_keys "
    ".bash_history .bashrc .profile .htpasswd .htaccess win.ini boot.ini system.ini sam environ "
    "wp-config.php .env".split()
)
# Where the binaries and the secrets are, for globs (`/???/c?t`, `/etc/pa??wd`).
_BIN_DIRS: Final = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin")
_GLOB_TARGETS: Final = tuple(
    [f"{d}/{c}" for d in _BIN_DIRS for c in sorted(UNIX_COMMANDS) if c.isalnum()]
    + ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/hosts", "/etc/sudoers", "/etc/issue",
       "/etc/master.passwd", "/proc/self/environ", "/proc/self/cmdline", "/proc/version", "/dev/tcp",
       "/dev/udp", "/root/.ssh", "/root/.bash_history"]
)  # fmt: skip
_SYSTEM_DIRS: Final = frozenset("etc bin sbin usr tmp var dev proc home root sys opt boot lib lib64 srv mnt".split())

# --- folding evasions -----------------------------------------------------------------------------------

_IFS: Final = re.compile(r"\$\{ifs[^}]{0,8}\}|\$ifs\b(?:\$\d)?", re.I)
# Expansions that are empty in an attacker's shell and only split a command word: $@ $* $1 ${x} $x.
_EMPTY_EXPANSION: Final = re.compile(r"\$(?:[@*\d]|\{[\w@*]{0,12}\}|\(\))|``")
# Every match of _EMPTY_EXPANSION but the empty backticks starts so: a search led by the literal `$`
# (the expansions' regex, led by two characters, tests a set at every position: 3x slower on long text).
_EXPANSION_START: Final = re.compile(r"\$[@*\d{(]")
_BRACE_LIST: Final = re.compile(r"\{([^{},\s]*(?:,[^{},\s]*)+)\}")
_WORD_SPLIT: Final = re.compile(r"[\s,]+")


def fold(text: str) -> str:
    """What a shell would run, as far as words go: quotes, `\\` and `^` gone, $IFS a space, empty
    expansions dropped, `{a,b}` spread into words; lowercased."""
    t = lowercase(text)
    if "$" in t:
        t = _IFS.sub(" ", t)
    # (one-character memchr tests first: a two-character `in` or `replace` scans slower)
    t = _drop_quotes(t.replace("\\\n", "") if "\\" in t else t)
    if ("$" in t and _EXPANSION_START.search(t) is not None) or ("`" in t and "``" in t):
        t = _EMPTY_EXPANSION.sub("", t)
    if "{" in t:
        t = _BRACE_LIST.sub(lambda m: " ".join(m.group(1).split(",")), t)
    return t


def _drop_quotes(text: str) -> str:
    """`text` without `\\`, `"`, `'` and `^`. (str.translate with deletions takes its slow path, a
    dictionary look-up per character: 100 ns each, 0.2 ms on a 2 KB value; each `replace` is a C scan.
    Deleting each of them in turn leaves the same subsequence.)"""
    return text.replace("\\", "").replace('"', "").replace("'", "").replace("^", "")


# --- words and their shapes ----------------------------------------------------------------------------

_IPV4: Final = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?")
_URL: Final = re.compile(r"(?:https?|ftps?|tftp|file|gopher|dict)://")
_FLAG: Final = re.compile(r"--?[a-z0-9][\w-]*$")
_WIN_FLAG: Final = re.compile(r"/[a-z?][\w:-]*$")
_DRIVE: Final = re.compile(r"[a-z]:(?:[/\\]|\w|$)")  # `c:\x`, and `c:x` once the cmdline view dropped the `\`
_SHELL_VARS: Final = re.compile(
    r"\$(?:\{|\(|\d|(?:home|path|shell|user|ifs|pwd|oldpwd|tmp|tmpdir|random|hostname|bash|env|ps1|histfile)\b)"
)
_NETWORK: Final = frozenset(
    "curl wget fetch lynx ftp tftp sftp telnet ssh scp nc ncat netcat socat ping host dig http xh "
    "mshta certutil bitsadmin iwr irm iex nslookup traceroute whois aria2c wget2 git".split()
)
# Subcommands that make an ordinary-looking command a system one (`net user`, `reg query`).
_SUBCOMMANDS: Final = {
    "net": frozenset("user users localgroup group share use view accounts session start stop config".split()),
    "net1": frozenset("user localgroup group share use view accounts session".split()),
    "reg": frozenset("query add delete export save import load".split()),
    "sc": frozenset("query qc create config start stop delete".split()),
    "ip": frozenset("a addr address r route link neigh".split()),
    "ps": frozenset("aux auxf auxww ax axu ef -ef -aux".split()),
}


_CLEAN_WORD: Final = re.compile(r"[a-z][\w.+-]*|(?:/[\w.+-]+)+")


def command_name(word: str) -> str:
    """The command a word names: path and `.exe` dropped (`/usr/bin/id`, `c:\\windows\\cmd.exe`), and a
    glob in an absolute path resolved against the usual binaries (`/bi?/c[a]t` → cat)."""
    if ("?" in word or "*" in word or "[" in word) and word.startswith("/"):
        hit = glob_target(word)
        return hit.rsplit("/", 1)[-1] if hit else ""
    if "$" in word:
        for cand in _unsplit(word):
            if _CLEAN_WORD.fullmatch(cand) and _known(command_name(cand)):
                return command_name(cand)
        return ""
    name = word.replace("\\", "/").rsplit("/", 1)[-1]
    for ext in (".exe", ".com"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    return name


_VERSIONED: Final = re.compile(r"python[\d.]+|php\d|gcc[\d.]+")


def _known(name: str) -> bool:
    return name in COMMANDS or name.startswith(("ansible", "chef-", "rmt-", "aa-")) or _VERSIONED.fullmatch(name) is not None


def _glob_tree() -> dict[str, dict]:  # type: ignore[type-arg]
    tree: dict[str, dict] = {}  # type: ignore[type-arg]
    for target in _GLOB_TARGETS:
        node = tree
        for seg in target.strip("/").split("/"):
            node = node.setdefault(seg, {})
    return tree


_GLOB_TREE: Final = _glob_tree()


def glob_target(word: str) -> str | None:
    """The binary or secret an absolute-path glob reaches (`/???/??t` → /bin/apt or /bin/cat), matched
    segment by segment as the shell does (a `*` never crosses a `/`), down a tree of the targets."""
    segs = [s for s in word.split("/") if s]
    if not segs or len(segs) > 4 or not ("?" in word or "*" in word or "[" in word):
        return None
    return _glob_walk(_GLOB_TREE, segs, "")


def _glob_walk(node: dict, segs: list[str], prefix: str) -> str | None:  # type: ignore[type-arg]
    if not segs:
        return prefix if not node else None
    glob = any(c in segs[0] for c in "?*[")
    for name, child in node.items() if glob else ((segs[0], node.get(segs[0])),):
        if child is not None and (not glob or fnmatchcase(name, segs[0])):
            hit = _glob_walk(child, segs[1:], f"{prefix}/{name}")
            if hit:
                return hit
    return None


def _strong_arg(word: str) -> bool:
    """An argument only a shell command line has: a system or home path, a secret's name, a URL, an
    address, a variable, a redirection to a file, a find/xargs placeholder."""
    if not word:
        return False
    if word.startswith("/"):
        top = word[1:].split("/", 1)[0]
        return top in _SYSTEM_DIRS or word == "/" or glob_target(word) is not None or word.rsplit("/", 1)[-1] in SENSITIVE_NAMES
    if word.startswith(("~/", "./", "../", "%")) or word in ("~", "{}", "{};") or _SHELL_VARS.match(word):
        return True
    if _DRIVE.match(word):
        return True
    return word in SENSITIVE_NAMES or word.rsplit("/", 1)[-1] in SENSITIVE_NAMES


# --- segments -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Segment:
    """One simple command: the separator that opened it (empty at the value's start) and its words."""

    opener: str
    text: str = ""

    @property
    def words(self) -> list[str]:
        """The first words: a command and the arguments that tell its shape (the rest of a long
        text's segment is never read)."""
        return _words(self.text)


def _words(text: str) -> list[str]:
    return [w for w in _WORD_SPLIT.split(text[:_HEAD], maxsplit=16) if w][:16]


# A newline is no separator here: multi-line text (GraphQL, stack traces, code) is not a script; the
# cmdline view of query and form values has already turned their newlines into `;`.
# The separators, split in C: the longest first where two share a start (`||`, `&&`; `$(`, `<(`, `>(`
# whose first character is no separator of its own). Every alternative starts with a literal: the
# regex looks for their first characters as a set (one alternative led by a class: 3x slower).
_SEPARATOR: Final = re.compile(r"(\|\||&&|\$\(|<\(|>\(|;|\||&|`|\(|\))")


def _split(folded: str) -> list[str]:
    """The segments' texts and openers in turn: text, opener, text, ... (an odd count)."""
    return _SEPARATOR.split(folded)


def segments(folded: str) -> list[Segment]:
    """Split at `;`, `|`, `||`, `&&`, `&`, a backtick, `(`, `)`, `$(`, `<(`, `>(`."""
    parts = _split(folded)
    return [Segment("", parts[0]), *(Segment(parts[k], parts[k + 1]) for k in range(1, len(parts), 2))]


_HEAD: Final = 400
_FIRST_WORD: Final = re.compile(r"[\s,]*([^\s,]{1,80})")
_MAY_PREFIX: Final = re.compile(r"[=$!@/\\?*\[<>]|^(?:python|php|gcc|ansible|chef-|rmt-|aa-)")
_LEADERS: Final = COMMANDS | WRAPPERS


def _may_command(text: str) -> bool:
    """Cheap first look: could this segment's first word lead to a command? (Most segments of long
    text cannot; only those are split into words.)"""
    m = _FIRST_WORD.match(text)
    if m is None:
        return False
    word = m.group(1)
    if word.endswith((".exe", ".com")):
        word = word[:-4]
    return word in _LEADERS or _MAY_PREFIX.search(word) is not None or word.split("/", 1)[0] in WINDOWS_COMMANDS


@dataclass(frozen=True, slots=True)
class _Cmd:
    name: str
    args: tuple[str, ...]
    redirect: bool  # a redirection (`<`, `>`, `>>`, `2>&1`, `<<<`) to a file or a descriptor


_REDIR_WORD: Final = re.compile(r"([^<>]{0,80}?)(\d?[<>]{1,3}&?)(.*)")
_SKIPPED_WORD: Final = re.compile(r"[a-z_]\w*=\S*|\$\w+|!")  # an assignment, a pure variable, `!`
_REDIRECT_TARGET: Final = re.compile(r"&?\d|&|/\S*|~\S*|\.\.?/\S*|\$\S+|[\w.-]+\.[a-z0-9]{1,4}")


def _redirection(word: str) -> re.Match[str] | None:
    """_REDIR_WORD read on `word`. Its middle group needs a `<` or `>`: a word with neither (nearly all)
    skips the regex, whose lazy head tries up to 80 lengths before it fails."""
    return _REDIR_WORD.fullmatch(word) if "<" in word or ">" in word else None


def _command(words: list[str]) -> _Cmd | None:
    """The command in command position: assignments, pure variables and wrappers skipped; a
    redirection stuck to the command word (`cat</etc/passwd`, `cat<<<x`) split off."""
    i = 0
    while i < len(words):
        w = words[i].lstrip("@")
        if _SKIPPED_WORD.fullmatch(w):
            i += 1
            continue
        rest = words[i + 1 :]
        m = _redirection(w)
        if m and m.group(1):
            w = m.group(1)
            rest = [m.group(2) + m.group(3), *rest]
        name = command_name(w)
        if not _known(name) and "/" in w[1:] and w.split("/", 1)[0] in WINDOWS_COMMANDS:
            # a cmd.exe switch stuck to its command: `dir/s`, `bcdboot/r`
            name, switch = w.split("/", 1)
            rest = ["/" + switch, *rest]
        if name in WRAPPERS and rest and not _redirection(rest[0]):
            j = 0
            while j < len(rest) and (rest[j].startswith("-") or rest[j].isdigit()):
                j += 1
            if j < len(rest) and _known(command_name(rest[j])):
                i += 1 + j
                continue
        if not name or not _known(name):
            return None
        args, redirect = _parse_args(rest)
        return _Cmd(name, args, redirect)
    return None


def _parse_args(words: list[str]) -> tuple[tuple[str, ...], bool]:
    """Arguments, and whether a redirection to a file or descriptor (or a here-string) is among them."""
    args: list[str] = []
    redirect = False
    pending = False
    for w in words:
        m = _redirection(w)
        if m and not m.group(1):
            if "<<<" in m.group(2):
                redirect = True
            pending = True
            w = m.group(3)
            if not w:
                continue
        if pending:
            pending = False
            redirect = redirect or _redirect_target(w)
            continue
        args.append(w)
    return tuple(args), redirect


def _redirect_target(word: str) -> bool:
    return bool(_REDIRECT_TARGET.fullmatch(word))


def _strong_args(cmd: _Cmd) -> bool:
    """Arguments only a command line has."""
    if cmd.redirect:
        return True
    for a in cmd.args:
        if _strong_arg(a):
            return True
    # a URL or an address is an argument of a network tool (or of a command no sentence has), not of
    # `at` in a stack trace's "at https://cdn.example.com/app.js:1:2"
    if (cmd.name in _NETWORK or cmd.name not in WORDLIKE) and any(_URL.match(a) or _IPV4.fullmatch(a) for a in cmd.args):
        return True
    return bool(cmd.args) and cmd.args[0] in _SUBCOMMANDS.get(cmd.name, ())


def _flags(cmd: _Cmd) -> bool:
    """Option flags among the arguments. (_FLAG matches a `-` first, _WIN_FLAG a `/`: other words skip
    the regexes.)"""
    windows = cmd.name in WINDOWS_COMMANDS
    for a in cmd.args:
        lead = a[:1]
        if (lead == "-" and _FLAG.match(a)) or (windows and lead == "/" and _WIN_FLAG.match(a)):
            return True
    return False


# What scanners run right after breaking out (commix's `;echo MARKER`, blind `;sleep 5`, `|ping -n 3`).
_PROBES: Final = frozenset({"echo", "printf", "sleep", "ping"})


# WORDLIKE commands that are English words or names people list (`pets=dog|cat`, `langs=python|java`).
_ENGLISH: Final = WORDLIKE - frozenset(
    "id ps ls env pwd cd du df nl od ar pr fmt su sg ln cp mv rm dd ed vi tr bc ss ip jq sc reg net1 npm pip gem psql".split()
)
_PLAIN_WORD: Final = re.compile(r"\s*[a-z][a-z0-9_-]*\s*")


def _listed_word(cmd: _Cmd, before: str) -> bool:
    """A bare English-word command after one plain word: an item of a list."""
    return not cmd.args and not cmd.redirect and cmd.name in _ENGLISH and _PLAIN_WORD.fullmatch(before) is not None


_BLANK: Final = re.compile(r"\s")


def _single_token(text: str) -> bool:
    t = text.strip(" \t=:")
    return len(t) <= 64 and not _BLANK.search(t)


def _shell_like(cmd: _Cmd, broke_out: bool) -> bool:
    """(The flags are read last, and only where they decide: most commands in text have no strong
    argument and are words after prose.)"""
    if _strong_args(cmd):
        return True
    wordlike = cmd.name in WORDLIKE
    if broke_out:
        # right after the data it broke out of: bare, flagged, or any command that is no English word
        return not cmd.args or _flags(cmd) or not wordlike or all(a.isdigit() for a in cmd.args) or cmd.name in _PROBES
    # after prose: only a command line's arguments, or a bare command no sentence (nor a random blob's
    # two letters) has: `whoami`, `ifconfig`, `systeminfo`
    return (not wordlike and _flags(cmd)) or (not cmd.args and not wordlike and len(cmd.name) >= 5)


# A text table: a first row `| a | b |`, an ASCII border `+----+----+`, a markdown delimiter `|---|`.
_TABLE_ROW: Final = re.compile(r"\s*\|(?:[^|;\n]*\|){2,}\s*(?:[;\n]|$)|.*?(?:\+-{3,}\+|\|\s*:?-{3,}:?\s*\|)", re.S)
_DATA_URL_END: Final = re.compile(r"\bdata:[\w/+.-]*$")
_CALLED_NAME: Final = re.compile(r"\s*[\w.-]+")


def _segment_command(seg: Segment) -> _Cmd | None:
    """The command standing first in a segment, if its first word may lead to one."""
    return _reading(seg.text)[0]


# A segment's reading: its command, and whether it is shell-like after prose and right after a breakout.
_Reading = tuple[_Cmd | None, bool, bool]


def _reading(text: str) -> _Reading:
    """It depends on the segment's text alone: short texts' are remembered (stack traces, lists and
    blobs repeat their segments: ` at u `, `https://cdn.example/app.js:1:2`), in a bounded cache of
    immutable answers."""
    if len(text) > _REMEMBERED_SEGMENT:
        return _read(text)
    return _short_reading(text)


_REMEMBERED_SEGMENT: Final = 200


def _read(text: str) -> _Reading:
    """`cmd, _shell_like(cmd, broke_out=False), _shell_like(cmd, broke_out=True)`, the strong arguments
    read once for both and the flags only where they decide: a WORDLIKE command (`at` of a stack
    trace's lines) is never shell-like after prose without them, one that is no WORDLIKE word always
    right after a breakout."""
    cmd = _command(_words(text)) if _may_command(text) else None
    if cmd is None:
        return None, False, False
    if _strong_args(cmd):
        return cmd, True, True
    args = cmd.args
    if cmd.name in WORDLIKE:
        return cmd, False, not args or cmd.name in _PROBES or all(a.isdigit() for a in args) or _flags(cmd)
    return cmd, (not args and len(cmd.name) >= 5) or _flags(cmd), True


_short_reading = functools.lru_cache(maxsize=4096)(_read)


def injected_commands(text: str, first_only: bool = False) -> list[str]:
    """The commands that stand in command position after a separator or inside a substitution, read as
    an injection would be (see the module's docstring); empty for prose, lists, tables and blobs. (The
    first one only with `first_only`: the others change no answer of is_command_injection.)"""
    folded = fold(text)
    parts = _split(folded)  # segment k: opener parts[2k - 1] (none for the first), text parts[2k]
    first = parts[0]
    # a value that starts as a command line (`cd /;...`), not as a sentence (`Ping me at 5; ...`)
    prev_cmd = _reading(first)[1]
    found: list[str] = []
    last = len(parts) - 1
    for k in range(2, last + 1, 2):
        opener, seg_text = parts[k - 1], parts[k]
        if opener in (")", "("):
            continue
        if opener == ";" and "data:" in parts[k - 2] and _DATA_URL_END.search(parts[k - 2]):
            continue  # `data:image/png;base64,...`: a MIME parameter, no separator
        if k < last and parts[k + 1] == "(" and _CALLED_NAME.fullmatch(seg_text):
            prev_cmd = False
            continue  # `iconv(conv, ...)`: a function call in code
        cmd, after_prose, after_breakout = _reading(seg_text)  # (read only here: the segments skipped above never need it)
        broke_out = prev_cmd
        if k == 2:
            # (a backtick pair at the start is the substitution rule's, which reads markdown's code spans)
            first_sep = opener != "`" and _single_token(first) and not (opener == "&" and "?" in first)
            # (`$(cmd)` and `<(cmd)` are the substitution rule's: shell syntax wherever they stand)
            broke_out = first_sep or prev_cmd
            if first_sep and not prev_cmd and cmd is not None and _listed_word(cmd, first):
                broke_out = False  # `dog|cat`, `python|java`, `id;type;name`: a list of words, not a breakout
            if first_sep and opener == "|" and _TABLE_ROW.match(folded) is not None:
                broke_out = False  # `| ID | Name |`: a markdown table's first row
        if cmd is not None and (after_breakout if broke_out else after_prose):
            found.append(cmd.name)
            if first_only:
                break
            prev_cmd = True
        else:
            prev_cmd = cmd is not None and broke_out and opener != "`"
    return found


def is_command_injection(text: str) -> bool:
    """A known command in command position after a separator or a substitution (rules 232101, 232106,
    232117, 232121)."""
    return bool(injected_commands(text, first_only=True))


# --- substitutions ----------------------------------------------------------------------------------------

# (every alternative led by a literal: the regex looks for their first characters as a set; one led by
# a class made it try every position)
_SUBST: Final = re.compile(r"\$\(\(|\$\(|<\(|>\(|`|\$\{|\$\[")
_PARAM: Final = re.compile(
    r"\$\{[!#]?(?:\w+|[@*#?$!-]|(?=:))(?:(?::?[-+=?]|[#%]{1,2}|//?|\^{1,2}|,{1,2}|:)[\w\s./:#%*?@~$!,+=^{}-]{0,60})?\}"
)
_MAKE_VAR: Final = re.compile(r"[A-Z][A-Z0-9_]*\)")
_ARITH: Final = re.compile(r"\$\[[\s\d+*/%()$\w-]*\]")
_LONE_PARAM: Final = re.compile(r"\s*\$\{\s*\w+\s*\}\s*")
_ARITH_REST: Final = re.compile(r"[\s\d$\w+*/%()-]*\)\)")
_IFS_REST: Final = re.compile(r"\s*ifs\b")
_INNER_END: Final = re.compile(r"[;|&)`\n]")


def is_substitution(text: str) -> bool:
    """Command, process or arithmetic substitution that a shell would run (rule 232100): `$(cmd)`,
    `` `cmd` ``, `<(cmd)`, `$((...))`, `$[...]`, a parameter expansion with an operator. A `$(` or `>(`
    inside a random telemetry blob is followed by no command and passes."""
    return substitution(text) is not None


def substitution(text: str) -> str | None:
    """The substitution found (for tests and the audit's curious), or None."""
    low = fold_quotes(lowercase(text))
    orig = fold_quotes(text)
    if len(orig) != len(low):
        orig = low
    if _LONE_PARAM.fullmatch(low):
        return low.strip()
    for m in _SUBST.finditer(low):
        op = m.group()
        end = m.end()  # (the rest of the value is read in place: no copy per substitution opener)
        found = low[m.start() : end + 40]
        if op == "$((":
            if _ARITH_REST.match(low, end):
                return found
        elif op == "${":
            if _PARAM.match(low, m.start()) or _IFS_REST.match(low, end) or low.startswith("`", end):
                return found
        elif op == "$[":
            if _ARITH.match(low, m.start()):
                return found
        else:
            if op == "`" and low.find("`", end) < 0:
                continue
            inner = _INNER_END.split(fold(low[end : end + 200]), maxsplit=1)[0]
            cmd = _command([w for w in _WORD_SPLIT.split(inner.strip()) if w][:8])
            if cmd is None:
                continue
            if op == "$(" and _MAKE_VAR.match(orig, m.end()) and cmd.name not in WINDOWS_COMMANDS:
                continue  # `$(MAKE)`, `$(TAR) -x`: a Makefile's variable (shell commands are lowercase)
            # `$(...)` and `<(...)` are shell syntax anywhere; a backtick pair is also markdown's code
            # span, read as a shell's only at the value's start or with a command line's arguments
            if op != "`" or _shell_like(cmd, broke_out=_single_token(low[: m.start()])):
                return found
    return None


def fold_quotes(text: str) -> str:
    return _drop_quotes(text)


# --- obfuscated command words -------------------------------------------------------------------------

_OBF_WORD: Final = re.compile(r"[\w$@{}'\"\\/.-]+")
# A run of _OBF_WORD's characters, from a position on.
_RUN: Final = re.compile(r"[\w$@{}'\"\\/.-]*")
_SPLITTING_SIGNS: Final = ("'", '"', "\\", "$")
_PARAM_OPERATOR: Final = re.compile(r"\$\{\w+(?::\d|:[-+=?]|//?|[#%^,]|@)")
_SPLITTING: Final = re.compile(r"['\"\\$]")
_NAMED_EXPANSION: Final = re.compile(r"\$\w+")
_BEFORE_WORD: Final = frozenset(" \t\n;|&`(=")
_AFTER_WORD: Final = frozenset(["", " ", "\t", "\n", ";", "|", "&", "`", ")", "<", ">"])


def is_obfuscated_command(text: str) -> bool:
    """A command word split by quotes, backslashes or empty expansions that folds into a known command
    (`w'h'o'am'i`, `c\\a\\t`, `c${x}url`, `sh$XX -c`), or $IFS standing for a space (rule 232109).
    Opaque tokens with a `$` inside (`...KdVJO2$peQt...`) fold into no command and pass."""
    low = lowercase(text)
    if _IFS.search(low):
        return True
    if _PARAM.search(low) and _PARAM_OPERATOR.search(low):
        return True
    for start, end in _split_word_runs(low):  # (in no order: any one decides)
        if start and low[start - 1] not in _BEFORE_WORD or low[end : end + 1] not in _AFTER_WORD:
            continue  # a command word stands alone (start, space, separator), not inside a blob's run
        word = low[start:end].strip("'\"\\")
        if not _SPLITTING.search(word) or len(word) > 60:
            continue  # quotes around a word (`"type"`) are no obfuscation; inside it (`t'y'pe`) they are
        for cand in _unsplit(word):
            name = command_name(cand) if _CLEAN_WORD.fullmatch(cand) else ""
            if len(name) > 1 and _known(name):
                return True
    return False


def _split_word_runs(low: str) -> Iterator[tuple[int, int]]:
    """The spans of the runs of _OBF_WORD (maximal: `[\\w$@{}'"\\\\/.-]+`) that hold a quote, a backslash
    or a `$`, each once, in no particular order. Found from those signs (a C scan for each of the four)
    and extended both ways, backwards as a run of the reversed text: a regex that looked for the runs
    tried its class at every position, 45 ns a character (0.25 ms on a 5 KB Markdown text)."""
    rev = ""
    n = len(low)
    seen: set[int] = set()
    for sign in _SPLITTING_SIGNS:
        pos = low.find(sign)
        while pos >= 0:
            rev = rev or low[::-1]
            start = n - _RUN.match(rev, n - 1 - pos).end()  # type: ignore[union-attr]  # `*`: always matches
            end = _RUN.match(low, pos).end()  # type: ignore[union-attr]
            if start not in seen:
                seen.add(start)
                yield start, end
            pos = low.find(sign, end)  # (the run's other signs are its own)


def _unsplit(word: str) -> list[str]:
    """The command word a shell would see: quotes and backslashes dropped, empty expansions ($@, $1,
    ${x}) dropped, and a `$name` taken as unset — the longest name, as the shell reads it (`sh$XX` → sh)."""
    base = _drop_quotes(word)
    base = _EMPTY_EXPANSION.sub("", base)
    base = _NAMED_EXPANSION.sub("", base)
    return [base] if base and "$" not in base else []


# --- globs in absolute paths ------------------------------------------------------------------------

# A word that starts with `/` at the start or after a blank or `;|&=(` and a backtick. Led by the `/`
# (a negative lookbehind over it and the character before: none at the start), so the regex looks for
# `/` alone; led by `(?:^|(?<=...))` it tried every position, 10 ns a character on long values.
_GLOB_WORD: Final = re.compile(r"/(?<![^\s;|&=(`]/)[^\s;|&`()<>'\"]*")
_ODD_BRACKET: Final = re.compile(r"\[[^\]]*/[^\]]*\]|\[[!^][^\]/]{1,3}\]|\[\?\]")


def is_glob_command(text: str) -> bool:
    """An absolute path with shell globs that reaches a binary or a secret (`/bi?/c[a]t`, `/etc/pa[s]swd`,
    `/???/??t /???/p??s??`), or a bracket expression that hides a `/` or negates (`/a[b//]c`,
    `/etc/[!q]asswd`) (rule 232118). URL templates with `?` or `*` segments (`/res/?/x.png`) reach
    nothing and pass."""
    for m in _GLOB_WORD.finditer(lowercase(text)):
        word = m.group()
        if not ("?" in word or "*" in word or "[" in word):
            continue
        if glob_target(word) is not None:
            return True
        if _ODD_BRACKET.search(word):
            return True
    return False
