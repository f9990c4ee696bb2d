package org.iommulab.riscv.internal.driver;

import org.iommulab.riscv.internal.spec.DeviceContext;
import org.iommulab.riscv.internal.spec.ProcessContext;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * The capabilities register (spec §5.3 "IOMMU capabilities") as the driver reads it: which
 * first-stage, G-stage and process-directory modes it may program, whether the unit has ATS and
 * hardware A/D updates, and its physical address size. The driver learns what it may use from
 * this register only, as a real driver does, never from the model's configuration.
 *
 * <p>Immutable and thread safe: the register is read-only and read once.
 */
final class Capabilities {
    private final long caps;

    /** @param caps the capabilities register */
    Capabilities(long caps) {
        this.caps = caps;
    }

    /** @return the register's value */
    long value() {
        return caps;
    }

    private boolean has(long bit) {
        return (caps & bit) != 0;
    }

    /** @return capabilities.version is 1.x (the layouts this driver writes) */
    boolean version1() {
        return (caps & 0xf0) == (Reg.CAP_VERSION_1_0 & 0xf0);
    }

    /** @return capabilities.IGS allows wire-signaled interrupts (WSI or BOTH), the only kind the driver handles */
    boolean wiredInterrupts() {
        long igs = (caps >>> Reg.CAP_IGS_SHIFT) & 3;
        return igs == Reg.CAP_IGS_WSI || igs == 2;
    }

    /** @return capabilities.ATS: the unit takes ATS translation and page requests (and has a page-request queue) */
    boolean ats() {
        return has(Reg.CAP_ATS);
    }

    /** @return capabilities.AMO_HWAD: the unit can set A/D bits itself (DC.tc.GADE, SADE) */
    boolean hardwareAd() {
        return has(Reg.CAP_AMO_HWAD);
    }

    /** @return capabilities.PAS as read, in bits */
    int rawPas() {
        return (int) ((caps >>> Reg.CAP_PAS_SHIFT) & 0x3f);
    }

    /** @return capabilities.PAS clamped to what RISC-V tables encode (32..56) */
    int pas() {
        return Math.max(32, Math.min(56, rawPas()));
    }

    /** @return the widest first-stage VA (39, 48, 57) the unit walks, or 0 */
    int widestFirstStage() {
        return has(Reg.CAP_SV57) ? 57 : has(Reg.CAP_SV48) ? 48 : has(Reg.CAP_SV39) ? 39 : 0;
    }

    /** @return iosatp.MODE for a first-stage VA width, or -1 if the unit does not walk it */
    int iosatpMode(int addressWidth) {
        return switch (addressWidth) {
            case 39 -> has(Reg.CAP_SV39) ? DeviceContext.ATP_SV39 : -1;
            case 48 -> has(Reg.CAP_SV48) ? DeviceContext.ATP_SV48 : -1;
            case 57 -> has(Reg.CAP_SV57) ? DeviceContext.ATP_SV57 : -1;
            default -> -1;
        };
    }

    /** @return iohgatp.MODE of the largest G-stage advertised (Sv57x4, Sv48x4, Sv39x4), or Bare */
    int gStageMode() {
        return has(Reg.CAP_SV57X4) ? DeviceContext.ATP_SV57 : has(Reg.CAP_SV48X4) ? DeviceContext.ATP_SV48
                : has(Reg.CAP_SV39X4) ? DeviceContext.ATP_SV39 : DeviceContext.ATP_BARE;
    }

    /** @return pdtp.MODE of the widest PDT advertised, or Bare */
    int widestPdtMode() {
        return has(Reg.CAP_PD20) ? DeviceContext.PDTP_PD20 : has(Reg.CAP_PD17) ? DeviceContext.PDTP_PD17
                : has(Reg.CAP_PD8) ? DeviceContext.PDTP_PD8 : DeviceContext.PDTP_BARE;
    }

    /** @return the process-id width of the widest PDT advertised (8, 17, 20), or 0 without PDTs */
    int pasidBits() {
        int mode = widestPdtMode();
        return mode == DeviceContext.PDTP_BARE ? 0 : ProcessContext.processIdBits(ProcessContext.levels(mode));
    }

    /** @return pdtp.MODE for a PASID width of 8, 17 or 20 bits if advertised, else -1 */
    int pdtMode(int pasidBits) {
        return switch (pasidBits) {
            case 8 -> has(Reg.CAP_PD8) ? DeviceContext.PDTP_PD8 : -1;
            case 17 -> has(Reg.CAP_PD17) ? DeviceContext.PDTP_PD17 : -1;
            case 20 -> has(Reg.CAP_PD20) ? DeviceContext.PDTP_PD20 : -1;
            default -> -1;
        };
    }

    /** @return whether a guest's PDT can nest on a G-stage: a first stage, PDTs and a G-stage */
    boolean canNest() {
        return widestFirstStage() > 0 && pasidBits() > 0 && gStageMode() != DeviceContext.ATP_BARE;
    }
}
