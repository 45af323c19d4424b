"""A register-level model of the parts of an RP2350 that firmware/boards/rp2350 touches, around a Cortex-M33 from
the Unicorn engine: enough to run firmware/build/rp2350/uart_echo.elf from its vector table, as the boot ROM
starts a RAM image, and talk to it over its UART0.

It is not the chip. It encodes the rules the datasheet and pico-sdk give for the blocks used, and records every
break of them in ``violations`` instead of hanging or guessing:
- RESETS: a block held in reset does not answer; RESET_DONE follows RESET, except that UART0 needs clk_peri.
- XOSC: STABLE once enabled with the 1-15 MHz range and a start-up delay; PLL_USB: LOCK once powered with a
  valid feedback divider and a stable XOSC; its output is 12 MHz x FBDIV / REFDIV / POSTDIV1 / POSTDIV2.
- CLOCKS: SELECTED follows SRC; an aux source may change only while the glitchless mux is not on it; a clock may
  not be switched to a source that is not running.
- UART0 (PL011): the divisors take effect when LCR_H is written; a byte sent needs the UART enabled, its pins on
  UART0 (FUNCSEL 0x0b) and de-isolated, and the line rate within 2 % of what the host uses.
- SysTick counts at the modelled clk_sys, from the wall clock.
Accesses to any other peripheral register are violations too: the firmware should touch only these.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import time
from collections import deque
from pathlib import Path

from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc, UcError
from unicorn.arm_const import UC_ARM_REG_PC, UC_ARM_REG_SP, UC_CPU_ARM_CORTEX_M33

from remoteproc.platforms.rp2350 import SRAM_BASE, flat_image

XOSC_HZ = 12_000_000
ROSC_HZ = 12_000_000
CLOCKS, RESETS, IO_QSPI, PADS_QSPI = 0x40010000, 0x40020000, 0x40030000, 0x40040000
XOSC, PLL_SYS, PLL_USB, UART0, WATCHDOG = 0x40048000, 0x40050000, 0x40058000, 0x40070000, 0x400D8000
BIT_UART0, BIT_PLL_USB, BIT_PADS_QSPI, BIT_IO_QSPI = 1 << 26, 1 << 15, 1 << 10, 1 << 7
SRAM_SIZE = 0x82000  # SRAM and the two scratch banks


class Rp2350Model:
    def __init__(self, elf: Path, *, uart_fd: int | None = None, host_baud: int = 1_000_000) -> None:
        self.image = flat_image(elf)
        self.uart_fd = uart_fd  # the UART's other end (a pty master), or None: TX bytes only collected
        self.host_baud = host_baud
        self.violations: list[str] = []
        self.writes: list[tuple[int, int]] = []  # (register, value written) in order, aliases resolved
        self.tx = bytearray()
        self.rx: deque[int] = deque()
        self._out = bytearray()
        self.reset = 0x1FFFFFFF  # every block held in reset; register values: pico-sdk hardware_regs *_RESET
        self.regs: dict[int, int] = {
            CLOCKS + 0x30: 0x0, CLOCKS + 0x34: 0x10000, CLOCKS + 0x3C: 0x41, CLOCKS + 0x48: 0x0,
            CLOCKS + 0x4C: 0x10000, XOSC + 0x0: 0x0, XOSC + 0xC: 0x0,
            PLL_USB + 0x0: 0x1, PLL_USB + 0x4: 0x2D, PLL_USB + 0x8: 0x0, PLL_USB + 0xC: 0x77000,
            IO_QSPI + 0x34: 0x1F, IO_QSPI + 0x3C: 0x1F, PADS_QSPI + 0x10: 0x15A, PADS_QSPI + 0x14: 0x15A,
            UART0 + 0x0: 0, UART0 + 0x24: 0, UART0 + 0x28: 0, UART0 + 0x2C: 0, UART0 + 0x30: 0x300,
            WATCHDOG: 0x07000000,
        }  # fmt: skip
        self.baud_divisor = 0.0  # IBRD + FBRD / 64 as latched by the last LCR_H write
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M33)
        self.uc.mem_map(SRAM_BASE, SRAM_SIZE)
        self.uc.mem_write(SRAM_BASE, self.image)
        self.uc.mmio_map(0x40000000, 0x100000, self._read, None, self._write, None)
        self.uc.mmio_map(0xE000E000, 0x1000, self._ppb_read, None, self._ppb_write, None)

    # ---- clocks
    def xosc_stable(self) -> bool:
        ctrl = self.regs[XOSC]
        return ctrl >> 12 == 0xFAB and ctrl & 0xFFF == 0xAA0 and self.regs[XOSC + 0xC] > 0

    def pll_usb_hz(self) -> int:
        """The PLL's output, 0 unless it is locked and its post dividers are powered."""
        cs, pwr, fbdiv, prim = (self.regs[PLL_USB + off] for off in (0x0, 0x4, 0x8, 0xC))
        if self.reset & BIT_PLL_USB or pwr & 0x21 or not 16 <= fbdiv <= 320 or not self.xosc_stable():
            return 0
        vco = XOSC_HZ // (cs & 0x3F) * fbdiv
        if pwr & 0x8 or not (750_000_000 <= vco <= 1_600_000_000):
            return 0
        return vco // (((prim >> 16) & 7) or 1) // (((prim >> 12) & 7) or 1)

    def pll_locked(self) -> bool:
        pwr, fbdiv = self.regs[PLL_USB + 0x4], self.regs[PLL_USB + 0x8]
        return not (self.reset & BIT_PLL_USB) and not pwr & 0x21 and 16 <= fbdiv <= 320 and self.xosc_stable()

    def clk_ref_hz(self) -> float:
        ctrl = self.regs[CLOCKS + 0x30]
        src = {0: ROSC_HZ, 1: self.pll_usb_hz() if (ctrl >> 5) & 3 == 0 else 0, 2: XOSC_HZ}.get(ctrl & 3, 0)
        return src / ((self.regs[CLOCKS + 0x34] >> 16) & 0xFF or 1)

    def clk_sys_hz(self) -> float:
        ctrl = self.regs[CLOCKS + 0x3C]
        if not ctrl & 1:
            return self.clk_ref_hz()
        aux = (ctrl >> 5) & 7
        return {1: self.pll_usb_hz(), 2: ROSC_HZ, 3: XOSC_HZ}.get(aux, 0)

    def clk_peri_hz(self) -> float:
        ctrl = self.regs[CLOCKS + 0x48]
        if not ctrl & 0x800:
            return 0
        return self.clk_sys_hz() if (ctrl >> 5) & 7 == 0 else 0

    def baud(self) -> float:
        return self.clk_peri_hz() / (16 * self.baud_divisor) if self.baud_divisor else 0.0

    # ---- the bus
    def _read(self, uc: Uc, offset: int, size: int, data: object) -> int:
        if self._stop.is_set():
            uc.emu_stop()
        try:
            return self.read(0x40000000 + offset)
        except Exception as exc:  # a model bug must surface in the test, not vanish in a callback
            self.error = exc
            uc.emu_stop()
            return 0

    def _write(self, uc: Uc, offset: int, size: int, value: int, data: object) -> None:
        try:
            self.write(0x40000000 + offset, value)
        except Exception as exc:
            self.error = exc
            uc.emu_stop()

    @staticmethod
    def _block_reset(reg: int) -> int:
        """The RESETS bit that holds the block of register ``reg`` (0 for blocks RESETS does not hold)."""
        for base, bit in (
            (UART0, BIT_UART0),
            (PLL_USB, BIT_PLL_USB),
            (IO_QSPI, BIT_IO_QSPI),
            (PADS_QSPI, BIT_PADS_QSPI),
        ):
            if base <= reg < base + 0x1000:
                return bit
        return 0

    def _violate(self, what: str) -> None:
        if what not in self.violations:
            self.violations.append(what)

    def read(self, addr: int) -> int:
        reg = addr & ~0x3000
        if reg == RESETS + 0x8:
            done = ~self.reset & 0x1FFFFFFF
            if not self.clk_peri_hz():
                done &= ~BIT_UART0  # UART0's reset completes only with its clock running
            return done
        if self._block_reset(reg) & self.reset:
            self._violate(f"read {reg:#x} while its block is held in reset")
            return 0
        if reg == XOSC + 0x4:
            return 0x80000000 if self.xosc_stable() else 0
        if reg == PLL_USB + 0x0:
            return self.regs[reg] | (0x80000000 if self.pll_locked() else 0)
        if reg == CLOCKS + 0x38:
            return 1 << (self.regs[CLOCKS + 0x30] & 3)
        if reg == CLOCKS + 0x44:
            return 1 << (self.regs[CLOCKS + 0x3C] & 1)
        if reg == UART0 + 0x18:  # FR: TX never full (the model sends at once), RXFE when nothing arrived
            self._pump()
            return 0 if self.rx else 0x10
        if reg == UART0 + 0x0:
            self._pump()
            return self.rx.popleft() if self.rx else 0
        if reg in self.regs:
            return self.regs[reg]
        self._violate(f"read of an unmodelled register {addr:#x}")
        return 0

    def write(self, addr: int, value: int) -> None:
        reg, alias = addr & ~0x3000, (addr >> 12) & 3
        if reg == RESETS + 0x0:
            old = self.reset
        elif reg in self.regs:
            old = self.regs[reg]
        else:
            self._violate(f"write {value:#x} to an unmodelled register {addr:#x}")
            return
        new = (value, old ^ value, old | value, old & ~value)[alias] & 0xFFFFFFFF
        if reg == UART0 + 0x0:
            new = old
        self.writes.append((reg, new))
        if reg != RESETS and self._block_reset(reg) & self.reset:
            self._violate(f"write {value:#x} to {reg:#x} while its block is held in reset")
        if reg == RESETS + 0x0:
            self.reset = new
            return
        if reg == CLOCKS + 0x3C and old & 1 and (old ^ new) & 0xE0:
            self._violate("clk_sys AUXSRC changed while clk_sys runs from it")
        if reg == CLOCKS + 0x30 and old & 3 == 1 and (old ^ new) & 0x60:
            self._violate("clk_ref AUXSRC changed while clk_ref runs from it")
        sys_on_pll_usb = self.regs[CLOCKS + 0x3C] & 1 and (self.regs[CLOCKS + 0x3C] >> 5) & 7 == 1
        if reg in (PLL_USB + 0x0, PLL_USB + 0x8) and sys_on_pll_usb:
            self._violate("PLL_USB reprogrammed while clk_sys runs from it")
        self.regs[reg] = new
        if reg in (CLOCKS + 0x30, CLOCKS + 0x3C, CLOCKS + 0x48) and (
            self.clk_sys_hz() == 0 or (reg == CLOCKS + 0x48 and new & 0x800 and self.clk_peri_hz() == 0)
        ):
            self._violate(f"clock switched to a source that is not running ({reg:#x} = {new:#x})")
        if reg == UART0 + 0x2C:
            self.baud_divisor = self.regs[UART0 + 0x24] + self.regs[UART0 + 0x28] / 64
        if addr & ~0x3000 == UART0 + 0x0:
            self._send(value & 0xFF)

    def _send(self, byte: int) -> None:
        problems = []
        if self.regs[UART0 + 0x30] & 0x101 != 0x101:
            problems.append("UART0 not enabled")
        if self.regs[IO_QSPI + 0x34] & 0x1F != 0x0B or self.regs[PADS_QSPI + 0x10] & 0x180:
            problems.append("QSPI SD2 not UART0_TX, or its pad isolated / output disabled")
        if (
            self.regs[IO_QSPI + 0x3C] & 0x1F != 0x0B
            or self.regs[PADS_QSPI + 0x14] & 0x100
            or not (self.regs[PADS_QSPI + 0x14] & 0x40)
        ):
            problems.append("QSPI SD3 not UART0_RX, or its pad isolated / input disabled")
        if self.regs[UART0 + 0x2C] & 0x70 != 0x70:
            problems.append("not 8 bits with FIFOs")
        if abs(self.baud() - self.host_baud) > 0.02 * self.host_baud:
            problems.append(f"line rate {self.baud():.0f} baud, the host's is {self.host_baud}")
        if problems:
            self._violate(f"TX: {', '.join(problems)}")
        self.tx.append(byte)
        self._out.append(byte)
        if len(self._out) >= 64:
            self._flush()

    def _flush(self) -> None:
        if self.uart_fd is not None and self._out:
            os.write(self.uart_fd, bytes(self._out))
        self._out.clear()

    def _pump(self) -> None:
        self._flush()
        if self.uart_fd is None or len(self.rx) >= 32:  # the PL011's RX FIFO holds 32; the rest waits in the pty
            return
        with contextlib.suppress(BlockingIOError):
            self.rx.extend(os.read(self.uart_fd, 32 - len(self.rx)))

    def _ppb_read(self, uc: Uc, offset: int, size: int, data: object) -> int:
        if offset == 0x18:  # SYST_CVR: a 24-bit down counter at clk_sys
            return int(0xFFFFFF - (time.monotonic() - self.t0) * self.clk_sys_hz()) & 0xFFFFFF
        return 0

    def _ppb_write(self, uc: Uc, offset: int, size: int, value: int, data: object) -> None:
        if offset == 0x18:
            self.t0 = time.monotonic()

    # ---- running
    def run(self, *, count: int = 0) -> None:
        """From the vector table as the boot ROM starts a RAM image: SP = word 0, PC = word 1."""
        sp, pc = struct.unpack_from("<2I", self.image)
        self.uc.reg_write(UC_ARM_REG_SP, sp)
        try:
            self.uc.emu_start(pc, 0, count=count)
        except UcError as exc:
            self.error = RuntimeError(f"CPU stopped at {self.uc.reg_read(UC_ARM_REG_PC):#x}: {exc}")
        self._flush()
        if self.error:
            raise self.error

    def start(self) -> None:
        if self.uart_fd is not None:
            os.set_blocking(self.uart_fd, False)

        def body() -> None:
            try:
                self.run()
            except BaseException as exc:  # kept for the test to raise
                self.error = exc

        self._thread = threading.Thread(target=body, name="rp2350-model", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.uc.emu_stop()
        if self._thread:
            self._thread.join(5)
