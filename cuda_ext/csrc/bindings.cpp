// The Python module: the entry points of bindings_raster.cpp, bindings_fields.cpp and bindings_volume.cpp,
// tensors in, raw pointers to the CPU loops (or the CUDA launchers) out.
#include "bindings.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "avatar compute kernels: Gaussian rasteriser (CPU), hash-grid triplane, NeRF field layers, Gaussian deformation, volume rendering";
    m.attr("with_cuda") =
#ifdef AVATAR_WITH_CUDA
        true;
#else
        false;
#endif
    m.def("project_fwd", &avatar::bind::project_fwd);
    m.def("project_bwd", &avatar::bind::project_bwd);
    m.def("blend_fwd", &avatar::bind::blend_fwd);
    m.def("blend_bwd", &avatar::bind::blend_bwd);
    m.def("hash_triplane_fwd", &avatar::bind::hash_triplane_fwd);
    m.def("hash_triplane_bwd", &avatar::bind::hash_triplane_bwd);
    m.def("field_mlp_fwd", &avatar::bind::field_mlp_fwd);
    m.def("deform_fwd", &avatar::bind::deform_fwd);
    m.def("deform_bwd", &avatar::bind::deform_bwd);
    m.def("march_rays", &avatar::bind::march_rays);
    m.def("march_parts", &avatar::bind::march_parts);
    m.def("composite_fwd", &avatar::bind::composite_fwd);
    m.def("composite_bwd", &avatar::bind::composite_bwd);
    m.def("lookup_volume", &avatar::bind::lookup_volume);
}
