/**
 * Docker's generated container names: ADJECTIVE_SURNAME (the style of
 * moby's pkg/namesgenerator, with a shorter list of our own).
 */
import crypto from 'node:crypto';

const LEFT = [
  'admiring', 'affectionate', 'agitated', 'amazing', 'angry', 'awesome', 'blissful', 'bold', 'brave', 'busy',
  'charming', 'clever', 'cool', 'compassionate', 'competent', 'confident', 'crazy', 'dazzling', 'determined', 'eager',
  'ecstatic', 'elastic', 'elegant', 'epic', 'exciting', 'fervent', 'focused', 'friendly', 'frosty', 'gallant',
  'gifted', 'goofy', 'gracious', 'happy', 'hardcore', 'heuristic', 'hopeful', 'hungry', 'infallible', 'inspiring',
  'jolly', 'jovial', 'keen', 'kind', 'laughing', 'loving', 'lucid', 'magical', 'modest', 'musing',
  'naughty', 'nervous', 'nice', 'nifty', 'nostalgic', 'objective', 'optimistic', 'peaceful', 'pedantic', 'pensive',
  'practical', 'priceless', 'quirky', 'quizzical', 'relaxed', 'reverent', 'romantic', 'sad', 'serene', 'sharp',
  'silly', 'sleepy', 'stoic', 'strange', 'suspicious', 'sweet', 'tender', 'thirsty', 'trusting', 'upbeat',
  'vibrant', 'vigilant', 'vigorous', 'wizardly', 'wonderful', 'xenodochial', 'youthful', 'zealous', 'zen',
];
const RIGHT = [
  'agnesi', 'albattani', 'allen', 'babbage', 'backus', 'bardeen', 'bell', 'borg', 'brattain', 'cerf',
  'chandrasekhar', 'cohen', 'curie', 'darwin', 'dijkstra', 'einstein', 'engelbart', 'euclid', 'euler', 'fermat',
  'feynman', 'franklin', 'galileo', 'gauss', 'goldberg', 'goodall', 'hamilton', 'hawking', 'heisenberg', 'hopper',
  'hypatia', 'johnson', 'kalam', 'kepler', 'knuth', 'lamport', 'leakey', 'liskov', 'lovelace', 'mccarthy',
  'meitner', 'mirzakhani', 'montalcini', 'morse', 'napier', 'newton', 'noether', 'pasteur', 'perlman', 'pike',
  'poincare', 'ritchie', 'rosalind', 'shannon', 'shockley', 'sinoussi', 'stallman', 'swartz', 'tesla', 'thompson',
  'torvalds', 'turing', 'varahamihira', 'visvesvaraya', 'wilson', 'wing', 'wozniak', 'wright', 'yalow', 'yonath',
];

/** A random adjective_surname name (never boring_wozniak, as moby's generator rules out). */
export function randomName(): string {
  for (;;) {
    const n = `${LEFT[crypto.randomInt(LEFT.length)]!}_${RIGHT[crypto.randomInt(RIGHT.length)]!}`;
    if (n !== 'boring_wozniak') return n;
  }
}
