package org.iommulab.api.idxd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.HashMap;
import java.util.Map;

import org.junit.jupiter.api.Test;

/** The completion status names: what counters, completion records and the shell print. */
class DsaTest {
    @Test
    void everyCompletionStatusHasItsOwnName() throws Exception {
        Map<String, Integer> names = new HashMap<>();
        for (Field f : Dsa.class.getFields()) {
            String constant = f.getName();
            if (!constant.startsWith("COMP_") || !Modifier.isStatic(f.getModifiers()) || f.getType() != int.class
                    || constant.equals("COMP_STATUS_WRITE") || constant.equals("COMP_SIZE")) {
                continue;
            }
            int status = f.getInt(null);
            String name = Dsa.statusName(status);
            assertEquals(constant.substring("COMP_".length()), name, "the name of status 0x" + Integer.toHexString(status));
            assertFalse(names.containsKey(name), name + " names two statuses");
            names.put(name, status);
            assertEquals(name, Dsa.statusName(status | Dsa.COMP_STATUS_WRITE), "bit 7 (write) is not part of the status");
        }
    }
}
