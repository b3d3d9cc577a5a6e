"""Writes pix2pix_tf/tasks/instruct/english_words.txt: the words the instruction editor's built-in text
encoder can read beyond its training instructions (see pix2pix_tf.tasks.instruct.text.subword_table).

The list is the most frequent lowercase alphabetic English words of the `wordfreq` package
(Robyn Speer, https://github.com/rspeer/wordfreq; its data is CC BY-SA 4.0). wordfreq is needed
only to run this script, never by the package:

    pip install --target /tmp/wordfreq wordfreq
    PYTHONPATH=/tmp/wordfreq python tools/make_english_words.py
"""

import re
import sys
from pathlib import Path

import wordfreq

COUNT = 30000
OUT = Path(__file__).resolve().parents[1] / "pix2pix_tf" / "tasks" / "instruct" / "english_words.txt"
HEADER = (f"# The {COUNT:,} most frequent lowercase alphabetic English words of wordfreq 3.1 "
          "(https://github.com/rspeer/wordfreq), most frequent first. Data: CC BY-SA 4.0 "
          "(wordfreq's sources). Made by tools/make_english_words.py.\n")


def main():
    words = [w for w in wordfreq.top_n_list("en", 3 * COUNT) if re.fullmatch("[a-z]+", w)]
    if len(words) < COUNT:
        sys.exit(f"wordfreq gave only {len(words)} words")
    OUT.write_text(HEADER + "\n".join(words[:COUNT]) + "\n", encoding="utf-8")
    print(f"wrote {COUNT} words to {OUT}")


if __name__ == "__main__":
    main()
