"""Host side of the MCU wire protocol (firmware/PROTOCOL.md): framing, client and the serial driver."""
