package org.iommulab.riscv.internal.driver;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.spi.DomainType;
import org.iommulab.riscv.internal.spec.Command;
import org.iommulab.riscv.internal.spec.DeviceContext;
import org.iommulab.riscv.internal.spec.ProcessContext;

/**
 * Shared virtual addressing for host processes (Linux {@code riscv_iommu_sva}): a device's DC gets
 * PDTV = 1 and a process-directory table of the driver's (the widest PDn advertised), and each
 * bound process id a PC pointing at the process's Sv39/48/57 table with a PSCID of its own
 * (§2.2.3). The device must be attached to an IDENTITY domain (requests without PASID pass
 * through: DPE = 0) or a BLOCKED one (DPE = 1 with PC 0 invalid: they fault).
 *
 * <p>Thread safe as used: every change runs under the driver's monitor; {@link #directory} and the
 * directories' bindings are concurrent maps the fault handler reads without it.
 */
final class HostSva {
    private final PhysicalMemory memory;
    private final FrameAllocator frames;
    private final Capabilities caps;
    private final IommuUnit unit;
    private final DeviceContexts contexts;
    /** Attached devices and their domain (read only here). */
    private final Map<Integer, RiscvDomain> devices;
    private final PasidTables pasidTables;
    private final IdAllocator pscids = new IdAllocator("PSCID", 0xf_ffff);
    /** Devices with host SVA bindings: the PDT the driver owns for each. */
    private final Map<Integer, ProcessDirectory> svas = new ConcurrentHashMap<>();

    HostSva(PhysicalMemory memory, FrameAllocator frames, Capabilities caps, IommuUnit unit, DeviceContexts contexts,
            Map<Integer, RiscvDomain> devices, PasidTables pasidTables) {
        this.memory = memory;
        this.frames = frames;
        this.caps = caps;
        this.unit = unit;
        this.contexts = contexts;
        this.devices = devices;
        this.pasidTables = pasidTables;
    }

    /** @return the PDT the driver owns for a device's bindings, or {@code null} */
    ProcessDirectory directory(int requesterId) {
        return svas.get(requesterId);
    }

    /**
     * Binds {@code pasid} of a device to a first-stage table. Flags: {@link GuestPasidBind#VTD_SRE}
     * sets PC.ta.ENS (supervisor requests allowed); no other flag has a RISC-V meaning.
     */
    void bind(int requesterId, int pasid, long pgd, int addressWidth, int flags) throws IommuException {
        unit.checkOpen();
        DeviceDirectory.checkFits(requesterId);
        int pdMode = caps.widestPdtMode();
        if (pdMode == DeviceContext.PDTP_BARE || caps.widestFirstStage() == 0) {
            throw new IommuException(Errno.EOPNOTSUPP, "the unit has no process-directory tables or no first stage");
        }
        int mode = caps.iosatpMode(addressWidth);
        if (mode < 0) {
            throw new IommuException(Errno.EINVAL, "first-stage width " + addressWidth + " is not one the unit walks "
                    + "(39, 48, 57 as capabilities.Sv39/48/57 allow)");
        }
        if ((pgd & 0xfff) != 0 || pgd < 0 || (pgd >>> caps.pas()) != 0) {
            throw new IommuException(Errno.EINVAL, String.format(
                    "first-stage root 0x%x must be 4 KiB aligned inside the %d-bit physical space", pgd, caps.pas()));
        }
        if ((flags & ~GuestPasidBind.VTD_SRE) != 0) {
            throw new IommuException(Errno.EINVAL, "bind flags 0x" + Integer.toHexString(flags)
                    + ": only VTD_SRE (supervisor requests, PC.ta.ENS) has a RISC-V meaning");
        }
        int pidBits = ProcessContext.processIdBits(ProcessContext.levels(pdMode));
        if (pasid < 1 || pasid >>> pidBits != 0) {
            throw new IommuException(Errno.EINVAL, "PASID " + pasid + " is outside 1.." + ((1 << pidBits) - 1));
        }
        RiscvDomain d = devices.get(requesterId);
        if (d == null) {
            throw new IommuException(Errno.ENOENT, String.format("device 0x%x is not attached", requesterId));
        }
        if (d.type() == DomainType.UNMANAGED) {
            throw new IommuException(Errno.EBUSY, String.format("device 0x%x is translated by G-stage domain %d%s: "
                    + "host SVA needs an IDENTITY or BLOCKED domain", requesterId, d.id(),
                    pasidTables.config(requesterId) != null ? " with a guest PASID table" : ""));
        }
        ProcessDirectory pd = svas.get(requesterId);
        if (pd != null && pd.bindings.containsKey(pasid)) {
            throw new IommuException(Errno.EBUSY, String.format("PASID %d of device 0x%x is bound", pasid, requesterId));
        }
        unit.start();
        int pscid = pscids.allocate();
        boolean fresh = pd == null;
        long pc = -1;
        try {
            if (fresh) {
                pd = ProcessDirectory.create(memory, frames, pdMode);
            }
            pc = pd.pc(pasid);
            // §2.2.3: fsc (iosatp) first, then ta with V.
            memory.write64(pc + ProcessContext.FSC, DeviceContext.iosatp(mode, pgd));
            memory.write64(pc + ProcessContext.TA, ProcessContext.ta(pscid, (flags & GuestPasidBind.VTD_SRE) != 0, false));
            if (fresh) {
                contexts.install(requesterId, contexts.dcFor(d, pd, null));
            } else {
                // §"Changing process directory table entry" (iohgatp is Bare here).
                pcChanged(requesterId, pasid, pscid);
            }
        } catch (IommuException | RuntimeException e) {
            if (pc >= 0) {
                memory.write64(pc + ProcessContext.TA, 0);
            }
            if (fresh) {
                if (pd != null) {
                    pd.free(); // install put the old DC back
                }
            } else {
                try {
                    pcChanged(requesterId, pasid, pscid);
                } catch (IommuException again) {
                    // the unit refuses commands
                }
            }
            pscids.free(pscid);
            throw e;
        }
        pd.bindings.put(pasid, new ProcessDirectory.Binding(pscid, pgd, mode));
        svas.put(requesterId, pd);
    }

    /** IODIR.INVAL_PDT for the PC, IOTINVAL.VMA for its PSCID (the G-stage is Bare). */
    private void pcChanged(int requesterId, int pasid, int pscid) throws IommuException {
        unit.commandQueue().submit(Command.iodirInvalPdt(requesterId, pasid), 0,
                Command.iotinval(false, -1, pscid, false), 0);
    }

    /** @return the binding of {@code pasid} of a device; {@code ENOENT} if there is none */
    private ProcessDirectory.Binding bound(int requesterId, int pasid) throws IommuException {
        ProcessDirectory pd = svas.get(requesterId);
        ProcessDirectory.Binding b = pd == null ? null : pd.bindings.get(pasid);
        if (b == null) {
            throw new IommuException(Errno.ENOENT, String.format("PASID %d of device 0x%x is not bound", pasid, requesterId));
        }
        return b;
    }

    /**
     * PC V = 0, IODIR.INVAL_PDT, IOTINVAL.VMA with the PSCID (and ATS.INVAL), then the PSCID is
     * free; the last binding of a device takes its PDT with it (the DC goes back to its domain's).
     */
    void unbind(int requesterId, int pasid) throws IommuException {
        unit.checkOpen();
        ProcessDirectory.Binding b = bound(requesterId, pasid);
        ProcessDirectory pd = svas.get(requesterId);
        long pc = pd.pc(pasid); // exists: no allocation
        long oldTa = memory.read64(pc + ProcessContext.TA);
        memory.write64(pc + ProcessContext.TA, 0); // V = 0
        CommandBatch cmds = new CommandBatch();
        cmds.add(Command.iodirInvalPdt(requesterId, pasid), 0);
        cmds.add(Command.iotinval(false, -1, b.pscid(), false), 0);
        if (caps.ats()) {
            cmds.add(Command.atsInval(requesterId, pasid), Command.atsInvalPayload(0, DeviceContexts.ATS_ALL));
        }
        try {
            unit.commandQueue().submit(cmds.toArray());
        } catch (IommuException e) {
            memory.write64(pc + ProcessContext.TA, oldTa);
            throw e;
        }
        pd.bindings.remove(pasid);
        pscids.free(b.pscid());
        if (pd.bindings.isEmpty()) {
            // The last binding: the device goes back to its domain's plain DC and the PDT is freed.
            svas.remove(requesterId);
            try {
                contexts.install(requesterId, contexts.dcFor(devices.get(requesterId), null, null));
            } catch (IommuException e) {
                svas.put(requesterId, pd); // the DC still names the (now empty) PDT
                throw e;
            }
            pd.free();
        }
    }

    /**
     * IOTINVAL.VMA GV = 0, PSCV = 1 with the binding's PSCID (§"Changing first-stage page table
     * entry", the second stage being Bare), AV = 1 per 4 KiB page of a small range, else AV = 0.
     */
    void invalidate(int requesterId, int pasid, long address, long size) throws IommuException {
        unit.checkOpen();
        ProcessDirectory.Binding b = bound(requesterId, pasid);
        if ((address & 0xfff) != 0 || size <= 0 || (size & 0xfff) != 0 || address + size - 1 < address) {
            throw new IommuException(Errno.EINVAL, String.format("bad range 0x%x+0x%x", address, size));
        }
        CommandBatch cmds = new CommandBatch().iotinval(false, -1, b.pscid(), address, size);
        if (caps.ats()) {
            cmds.add(Command.atsInval(requesterId, pasid), Command.atsInvalPayload(address, size));
        }
        unit.commandQueue().submit(cmds.toArray());
    }

    /**
     * Detach, after the device's DC was made invalid (which flushed its old configuration): its
     * bindings go, with their PSCIDs and its PDT.
     */
    void forget(int requesterId) {
        ProcessDirectory pd = svas.remove(requesterId);
        if (pd == null) {
            return;
        }
        CommandBatch cmds = new CommandBatch();
        for (ProcessDirectory.Binding b : pd.bindings.values()) {
            cmds.add(Command.iotinval(false, -1, b.pscid(), false), 0);
        }
        try {
            unit.commandQueue().submit(cmds.toArray());
        } catch (IommuException e) {
            // the DC is invalid and INVAL_DDT plus a full IOTINVAL.VMA completed already
        }
        for (ProcessDirectory.Binding b : pd.bindings.values()) {
            pscids.free(b.pscid());
        }
        pd.free();
    }

    /** Close, after the unit stopped: every PDT is freed and every PSCID forgotten. */
    void clear() {
        for (ProcessDirectory pd : svas.values()) {
            pd.free();
        }
        svas.clear();
        pscids.clear();
    }
}
