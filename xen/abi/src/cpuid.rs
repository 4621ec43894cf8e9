//! Finding Xen through the CPUID hypervisor leaves.

/// "XenVMMXenVMM" in ebx, ecx, edx.
const SIGNATURE: [u32; 3] = [0x566e_6558, 0x65584d4d, 0x4d4d566e];

/// Xen's leaves start at 0x40000000 or, when another interface is offered
/// first (Viridian), at a later multiple of 0x100.
pub fn find_base(cpuid: impl Fn(u32) -> [u32; 4]) -> Option<u32> {
    (0..16u32).map(|i| 0x4000_0000 + i * 0x100).find(|&leaf| {
        let [eax, ebx, ecx, edx] = cpuid(leaf);
        [ebx, ecx, edx] == SIGNATURE && eax >= leaf + 2
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(at: u32) -> impl Fn(u32) -> [u32; 4] {
        move |leaf| if leaf == at { [at + 5, SIGNATURE[0], SIGNATURE[1], SIGNATURE[2]] } else { [0; 4] }
    }

    #[test]
    fn finds_signature_at_any_step() {
        assert_eq!(find_base(fake(0x4000_0000)), Some(0x4000_0000));
        assert_eq!(find_base(fake(0x4000_0100)), Some(0x4000_0100));
        assert_eq!(find_base(fake(0x3000_0000)), None);
        // A signature whose max leaf is too small to reach the MSR leaf.
        assert_eq!(
            find_base(|l| if l == 0x4000_0000 { [l + 1, SIGNATURE[0], SIGNATURE[1], SIGNATURE[2]] } else { [0; 4] }),
            None
        );
    }
}
