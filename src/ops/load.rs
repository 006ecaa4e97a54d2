//! `load(path)`: an image file as a gray matrix.

use super::{
    req, Arg, Attrs, CheckError, Doc, Forward, Io, Kind, Meta, Notes, Op, Param, PointwiseFns,
    Signature,
};
use crate::tensor::{Real, Type, Value};

pub struct Load;

impl Meta for Load {
    fn name(&self) -> &'static str {
        "load"
    }
    fn doc(&self) -> Doc {
        Doc {
            summary: "an image file as a gray matrix in [0, 1], rows = the image's height",
            details: "Reads PNG, JPEG, TIFF, GIF, BMP and 2-D float .npy arrays (taken as they are, \
                      so possibly outside [0, 1]). Colour is converted to gray exactly as Julia's \
                      Colors.jl does (Rec. 601 luma 0.299 R + 0.587 G + 0.114 B, rounded at the file's \
                      bit depth); alpha is dropped. A relative path is relative to the script's folder, \
                      or to the current folder when it came from --set. The file's shape is read when \
                      the script is checked, so a missing or unreadable file is reported before \
                      anything runs.",
            gradient: "none: an image file is a constant (to optimise an image, bind it with `learn`)",
            example: "img = load(\"images/clouds.png\")",
        }
    }
    fn signature(&self) -> Signature {
        const PARAMS: &[Param] = &[req("path", Kind::Str, "the image file")];
        Signature {
            params: PARAMS,
            variadic: false,
        }
    }
    fn check(&self, _: &[Type], attrs: &Attrs, io: &dyn Io) -> Result<Type, CheckError> {
        let path = attrs.str("path");
        io.image_shape(path).map(Type::Matrix).map_err(|reason| {
            CheckError::new(
                "image_unreadable",
                reason,
                "check the path and the file; a relative path in a script is relative to the \
                 script's folder, one given with --set to the current folder",
            )
            .label(Arg::Attr("path"), format!("{}", io.resolve(path).display()))
        })
    }
    fn pointwise(&self) -> Option<PointwiseFns> {
        None
    }
}

impl<T: Real> Op<T> for Load {
    /// The reason of a failure is the [`Io`]'s, which names the file.
    fn forward(&self, _: &[&Value<T>], attrs: &Attrs, io: &dyn Io, _: &mut Notes<T>) -> Forward<T> {
        let gray = io.read_gray(attrs.str("path"))?;
        Ok(Value::Matrix(gray.mapv(T::lit)))
    }

    /// No inputs, no gradients.
    fn backward(
        &self,
        _: &[&Value<T>],
        _: &Value<T>,
        _: &[T],
        _: Value<T>,
        _: &Attrs,
        _: &[bool],
    ) -> Vec<Option<Value<T>>> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{attrs, forward, prim, FakeIo};
    use crate::ops::{Arg, Io, Origin, Static, Text};
    use crate::tensor::Shape;
    use ndarray::Array2;
    use std::path::PathBuf;

    fn text(p: &str) -> Text {
        Text {
            value: p.to_string(),
            origin: Origin::Script,
        }
    }

    fn path(p: &str) -> [(&'static str, Static); 1] {
        [("path", Static::Str(text(p)))]
    }

    #[test]
    fn reads_through_io() {
        let m = forward("load", &[], &path("any.png")).into_matrix();
        assert_eq!(m, FakeIo.read_gray(&text("any.png")).unwrap());
    }

    /// An [`Io`] whose files are all unreadable, under `/scripts`.
    struct Missing;
    impl Io for Missing {
        fn resolve(&self, path: &Text) -> PathBuf {
            PathBuf::from("/scripts").join(&path.value)
        }
        fn image_shape(&self, _: &Text) -> Result<Shape, String> {
            Err("no such file".into())
        }
        fn read_gray(&self, _: &Text) -> Result<Array2<f64>, String> {
            Err("no such file".into())
        }
        fn output_path(&self, path: &str) -> Result<PathBuf, String> {
            Ok(PathBuf::from("/scripts").join(path))
        }
    }

    #[test]
    fn refuses_an_unreadable_file() {
        let p = prim("load");
        let e = p
            .check(&[], &attrs(p, &path("gone.png")), &Missing)
            .unwrap_err();
        assert_eq!(e.code, "image_unreadable");
        assert_eq!(e.message, "no such file");
        assert_eq!(
            e.labels,
            vec![(Arg::Attr("path"), "/scripts/gone.png".to_string())]
        );
    }
}
