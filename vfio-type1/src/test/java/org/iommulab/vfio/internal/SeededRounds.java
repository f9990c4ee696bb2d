package org.iommulab.vfio.internal;

import java.util.Random;

/**
 * Runs a property test's rounds, each with its own seeded {@link Random}, and names the seed of a
 * failing round with the command line that reruns it alone. {@code -Diommulab.seed=N} sets the first
 * seed, {@code -Diommulab.isolation.rounds=N} (default 12) how many rounds run.
 */
final class SeededRounds {
    /** One round of a property. */
    interface Round {
        void run(Random random) throws Exception;
    }

    private SeededRounds() {
    }

    static void run(String property, long defaultSeed, Round round) {
        long first = Long.getLong("iommulab.seed", defaultSeed);
        int rounds = Integer.getInteger("iommulab.isolation.rounds", 12);
        for (long seed = first; seed < first + rounds; seed++) {
            try {
                round.run(new Random(seed));
            } catch (Exception | AssertionError e) {
                throw new AssertionError(property + " failed with seed " + seed
                        + " (rerun: -Diommulab.seed=" + seed + " -Diommulab.isolation.rounds=1)", e);
            }
        }
    }
}
