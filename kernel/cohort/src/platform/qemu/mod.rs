//! Plain QEMU (no Xen): devices found on PCI.

pub mod virtio_net;
